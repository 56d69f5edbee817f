// The layer rules in eslint.config.js are what makes `make check` fail on a forbidden import;
// these tests lint deliberate violations through ESLint's Node API against the real config, so
// a rule that stopped matching (a typo in a regex, a `files` glob that no longer covers a folder)
// fails here instead of silently letting the arrow in.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { eslint, lintMessages, root } from './support/lint.ts';

const LAYER_RULES = new Set(['no-restricted-imports', 'no-restricted-syntax']);

async function layerErrors(file: string, code: string): Promise<string[]> {
  return (await lintMessages(file, code))
    .filter((m) => m.ruleId !== null && LAYER_RULES.has(m.ruleId))
    .map((m) => m.message);
}

const loadsAgent =
  "export async function run(): Promise<unknown> {\n  return import('../../agent/run.ts');\n}\n";

const forbidden: readonly (readonly [file: string, code: string])[] = [
  ['src/model/layer-probe.ts', "export { readFileSync } from 'node:fs';\n"],
  ['src/model/layer-probe.ts', "import 'yaml';\n"],
  [
    'src/model/layer-probe.ts',
    "import { ServiceWriter } from '../datapath/service-writer.ts';\nexport { ServiceWriter };\n",
  ],
  ['src/model/layer-probe.ts', "import { runCommand } from '../common/run.ts';\nexport { runCommand };\n"],
  // One folder down, ../ is src/model: a step further out must still land in src/common.
  [
    'src/model/policy/layer-probe.ts',
    "import { ServiceWriter } from '../../datapath/service-writer.ts';\nexport { ServiceWriter };\n",
  ],
  [
    'src/model/policy/layer-probe.ts',
    "import { runCommand } from '../../common/run.ts';\nexport { runCommand };\n",
  ],
  ['src/model/policy/layer-probe.ts', "export { readFileSync } from 'node:fs';\n"],
  ['src/datapath/layer-probe.ts', "import { runAgent } from '../agent/run.ts';\nexport { runAgent };\n"],
  [
    'src/datapath/nodeport/layer-probe.ts',
    "import type { Flow } from '../../observe/flow.ts';\nexport type { Flow };\n",
  ],
  ['src/datapath/layer-probe.ts', "export * from '../cli/pins.ts';\n"],
  [
    'src/sources/kube/layer-probe.ts',
    "import { LB_MAP_NAMES } from '../../datapath/socket-lb.ts';\nexport { LB_MAP_NAMES };\n",
  ],
  ['src/lab/layer-probe.ts', "import { runAgent } from '../agent/run.ts';\nexport { runAgent };\n"],
  [
    'src/cli/commands/layer-probe.ts',
    "import { runAgent } from '../../agent/run.ts';\nexport { runAgent };\n",
  ],
  // A command that does not run the agent must not load it even lazily (`ferry status`).
  ['src/cli/commands/status.ts', loadsAgent],
  ['src/cli/layer-probe.ts', "export const load = (): Promise<unknown> => import('../agent/agent.ts');\n"],
  // The command that runs the agent may import() it, but not import it statically.
  ['src/cli/commands/agent.ts', "import { runAgent } from '../../agent/run.ts';\nexport { runAgent };\n"],
  // The temporary allowance for src/cli/inspect.ts covers run.ts only, not the rest of the agent.
  ['src/cli/inspect.ts', "import { SyncRunner } from '../agent/sync-runner.ts';\nexport { SyncRunner };\n"],
];

for (const [file, code] of forbidden) {
  test(`make check rejects ${JSON.stringify(code.split('\n')[0])} in ${file}`, async () => {
    const errors = await layerErrors(file, code);
    assert.equal(errors.length, 1, `expected one layer error, got ${JSON.stringify(errors)}`);
  });
}

const allowed: readonly (readonly [file: string, code: string])[] = [
  [
    'src/model/layer-probe.ts',
    "import { parseIp } from '../common/ip.ts';\nimport type { Service } from './k8s.ts';\nexport { parseIp, type Service };\n",
  ],
  [
    'src/model/policy/layer-probe.ts',
    "import { parseIp } from '../../common/ip.ts';\nimport { ObjectErrors } from '../object-errors.ts';\nexport { parseIp, ObjectErrors };\n",
  ],
  [
    'src/datapath/layer-probe.ts',
    "import type { Frontend } from '../model/frontend.ts';\nexport type { Frontend };\n",
  ],
  [
    'src/sources/kube/layer-probe.ts',
    "import type { Service } from '../../model/k8s.ts';\nexport type { Service };\n",
  ],
  // Running the agent through a dynamic import() in its own command is the one way in from the CLI.
  ['src/cli/commands/agent.ts', loadsAgent],
  [
    'src/cli/commands/status.ts',
    "export const load = (): Promise<unknown> => import('../agent-health.ts');\n",
  ],
];

for (const [file, code] of allowed) {
  test(`the layer rules allow ${JSON.stringify(code.split('\n')[0])} in ${file}`, async () => {
    assert.deepEqual(await layerErrors(file, code), []);
  });
}

test('the tree as committed has no layer violation', async () => {
  const results = await eslint.lintFiles(['src/**/*.ts']);
  const violations = results.flatMap((r) =>
    r.messages
      .filter((m) => m.ruleId !== null && LAYER_RULES.has(m.ruleId))
      .map((m) => `${path.relative(root, r.filePath)}:${m.line}: ${m.message}`),
  );
  assert.deepEqual(violations, []);
});
