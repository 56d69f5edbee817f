// The standalone source's size cap reaches a running agent through its flag: a manifest over
// --manifest-max-file-bytes is refused by name in the status file and its Services are not served,
// while the rest of the directory is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { agentEnv, waitReady, writeServices } from './support/agent-env.ts';
import { faultTable } from '../support/fault-table.ts';

const table = faultTable('agent: manifest flags');

test('--manifest-max-file-bytes: a larger file is refused by name, the others are served', async (t) => {
  const env = agentEnv(t);
  writeServices(env, 1);
  const small = fs.statSync(path.join(env.manifests, 'services.yaml')).size;
  const big = `# padding\n${'#'.repeat(small * 2)}\n${fs.readFileSync(path.join(env.manifests, 'services.yaml'), 'utf8').replaceAll('web-0', 'big-0').replaceAll('10.96.7.1', '10.96.7.99').replaceAll('10.244.7.1', '10.244.7.99')}`;
  fs.writeFileSync(path.join(env.manifests, 'big.yaml'), big);
  const agent = env.start(['--manifest-max-file-bytes', String(small + 100)]);
  await waitReady(env, agent);
  const status = JSON.parse(fs.readFileSync(path.join(env.runDir, 'status.json'), 'utf8')) as {
    agent: { frontends: number };
    sourceStatus: { issues: { file?: string; message: string }[] };
  };
  const text = JSON.stringify(status.sourceStatus.issues);
  assert.match(text, /big\.yaml/, text);
  assert.doesNotMatch(text, /services\.yaml/, text);
  const listed = await env.run(['service', 'list', '--pin-dir', env.pinDir]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /10\.96\.7\.1\b/);
  assert.doesNotMatch(listed.stdout, /10\.96\.7\.99/);
  agent.child.kill('SIGTERM');
  await agent.exited(10_000);
  table.row('manifest over --manifest-max-file-bytes', 'refused by name in status; its Services unserved, the rest served');
});
