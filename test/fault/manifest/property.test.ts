// Property test of the standalone source feeding the real model: random sequences of atomic and
// in-place rewrites, renames, truncations, partial writes, deletes, symlinks (to files, and loops)
// and files that define the same Service differently. Invariants, checked on every emitted change
// and after every step:
//   - a Service whose last complete definition in some file is valid is never absent (a partial
//     write keeps the last complete text; a prefix that happens to be complete replaces it);
//   - a live Service's ClusterIP and NodePorts never change while it exists;
//   - nothing is half-programmed: the model's table is exactly the frontends of the live Services;
// and at the end, once every file is rewritten complete, exactly the defined Services are live.
// FERRY_PROPERTY_RUNS sets the number of runs (default 6: some 10-20 s on a busy machine).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { Service } from '../../../src/model/k8s.ts';
import { ServiceModel } from '../../../src/model/service-model.ts';
import { parseManifestFile } from '../../../src/sources/manifest/parse.ts';
import { ManifestSource } from '../../../src/sources/manifest/source.ts';
import { faultTable } from '../support/fault-table.ts';
import { programmed, sleep } from './harness.ts';

const RUNS = Number(process.env.FERRY_PROPERTY_RUNS ?? 6);
const SETTLE_MS = 120;
const NODE = '172.30.0.1';
const NAMES = ['s0', 's1', 's2', 's3'] as const;
const FILES = ['a.yaml', 'b.yaml', 'c.yaml', 'sub/d.yaml'] as const;
const PORTS = [
  { name: 'http', port: 80, protocol: 'TCP' },
  { name: 'https', port: 443, protocol: 'TCP' },
  { name: 'dns', port: 53, protocol: 'UDP' },
] as const;

interface Def {
  readonly name: (typeof NAMES)[number];
  readonly nodePort: boolean;
  readonly ports: readonly number[]; // indexes into PORTS, non-empty
}

const defArb: fc.Arbitrary<Def> = fc.record({
  name: fc.constantFrom(...NAMES),
  nodePort: fc.boolean(),
  ports: fc.uniqueArray(fc.integer({ min: 0, max: PORTS.length - 1 }), { minLength: 1, maxLength: 3 }),
});

function render(defs: readonly Def[]): string {
  const seen = new Set<string>();
  return defs
    .filter((d) => !seen.has(d.name) && seen.add(d.name))
    .map((d) => {
      const ports = d.ports
        .map((i) => PORTS[i]!)
        .map((p) => `{name: ${p.name}, port: ${p.port}, protocol: ${p.protocol}}`)
        .join(', ');
      return `apiVersion: v1\nkind: Service\nmetadata: {name: ${d.name}}\nspec: {type: ${d.nodePort ? 'NodePort' : 'ClusterIP'}, ports: [${ports}]}\n`;
    })
    .join('---\n');
}

type Op =
  | { readonly kind: 'write'; readonly file: number; readonly defs: readonly Def[] } // temp + rename
  | { readonly kind: 'inplace'; readonly file: number; readonly defs: readonly Def[]; readonly cut: number }
  | { readonly kind: 'partial'; readonly file: number; readonly defs: readonly Def[]; readonly cut: number }
  | { readonly kind: 'truncate'; readonly file: number }
  | { readonly kind: 'rename'; readonly from: number; readonly to: number }
  | { readonly kind: 'delete'; readonly file: number }
  | { readonly kind: 'symlink'; readonly file: number; readonly target: number }
  | { readonly kind: 'loop'; readonly n: number };

const file = fc.integer({ min: 0, max: FILES.length - 1 });
const defs = fc.array(defArb, { minLength: 0, maxLength: 3 });
const cut = fc.double({ min: 0.05, max: 0.95, noNaN: true });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('write' as const), file, defs }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('inplace' as const), file, defs, cut }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('partial' as const), file, defs, cut }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), file }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('rename' as const), from: file, to: file }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), file }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('symlink' as const), file, target: file }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('loop' as const), n: fc.integer({ min: 0, max: 1 }) }),
  },
);

function expectedFrontends(services: Iterable<Service>): string[] {
  const out: string[] = [];
  for (const s of services)
    for (const p of s.spec.ports ?? []) {
      const proto = p.protocol ?? 'TCP';
      out.push(`${s.spec.clusterIP}:${p.port}/${proto} (internal)`);
      if (p.nodePort !== undefined)
        out.push(`${NODE}:${p.nodePort}/${proto} (external)`, `${NODE}:${p.nodePort}/${proto} (internal)`);
    }
  return out.sort();
}

const held = (s: Service): string =>
  JSON.stringify([s.spec.clusterIPs, s.spec.ports?.map((p) => [p.port, p.nodePort])]);

async function run(ops: readonly Op[]): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-fault-manifest-prop-'));
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-fault-manifest-prop-state-'));
  fs.mkdirSync(path.join(dir, 'sub'));
  const violations: string[] = [];
  const live = new Map<string, Service>();
  const model = new ServiceModel({ nodeName: 'node-1', nodeAddresses: [NODE] });
  const source = ManifestSource.open(dir, {
    stateDir,
    debounceMs: 10,
    rescanMs: 600_000,
    settleMs: SETTLE_MS,
    onChange: (c) => {
      if (c.kind === 'Service') {
        if (c.previous && c.current && held(c.previous) !== held(c.current)) {
          // Only a change of ports may change NodePorts; the ClusterIP never changes.
          if (JSON.stringify(c.previous.spec.clusterIPs) !== JSON.stringify(c.current.spec.clusterIPs))
            violations.push(
              `${c.key}: ClusterIP ${c.previous.spec.clusterIP} -> ${c.current.spec.clusterIP}`,
            );
          for (const p of c.current.spec.ports ?? []) {
            const before = c.previous.spec.ports?.find((q) => q.port === p.port && q.protocol === p.protocol);
            if (before?.nodePort !== undefined && p.nodePort !== undefined && before.nodePort !== p.nodePort)
              violations.push(`${c.key}: NodePort of ${p.port} ${before.nodePort} -> ${p.nodePort}`);
          }
        }
        if (c.current) live.set(c.key, c.current);
        else live.delete(c.key);
      }
      model.apply(c);
      model.sync();
      const table = programmed(model);
      const want = expectedFrontends(live.values());
      if (JSON.stringify(table) !== JSON.stringify(want))
        violations.push(`half-programmed after ${c.kind} ${c.key}: ${table.join(' ')} != ${want.join(' ')}`);
    },
  });
  const abs = (i: number): string => path.join(dir, FILES[i]!);
  const real = (p: string): string | undefined => {
    try {
      return fs.realpathSync(p);
    } catch {
      return undefined;
    }
  };
  const isLink = (p: string): boolean => {
    try {
      return fs.lstatSync(p).isSymbolicLink();
    } catch {
      return false;
    }
  };
  /** Real path of a file → the Services of the last complete, valid text it held. */
  const last = new Map<string, readonly string[]>();
  /** What a text defines if it is complete and valid (the parser decides: a prefix may be). */
  const definedBy = (text: string): readonly string[] | undefined => {
    const parsed = parseManifestFile('x.yaml', text);
    if (parsed.syntaxError || parsed.issues.length > 0) return undefined;
    return parsed.objects.filter((o) => o.entry.kind === 'Service').map((o) => o.entry.object.metadata.name);
  };
  const wrote = (p: string, text: string): void => {
    const r = real(p);
    if (r === undefined) return;
    const names = definedBy(text);
    if (names !== undefined) last.set(r, names);
    else if (!last.has(r)) last.set(r, []);
  };
  const mustBeLive = (): string[] => {
    const names = new Set<string>();
    for (const f of FILES) {
      const r = real(path.join(dir, f));
      for (const n of (r && last.get(r)) || []) names.add(`default/${n}`);
    }
    return [...names].sort();
  };
  try {
    await source.initialListDone;
    for (const op of ops) {
      switch (op.kind) {
        case 'write': {
          const text = render(op.defs);
          const tmp = path.join(path.dirname(abs(op.file)), `.${path.basename(abs(op.file))}.tmp`);
          fs.writeFileSync(tmp, text);
          fs.renameSync(tmp, abs(op.file)); // replaces a symlink by a file
          wrote(abs(op.file), text);
          break;
        }
        case 'inplace': {
          // Truncate, then two writes a moment apart: a slow writer, well within the settle time.
          const text = render(op.defs);
          const at = Math.floor(text.length * op.cut);
          const fd = fs.openSync(abs(op.file), fs.existsSync(abs(op.file)) ? 'r+' : 'w');
          try {
            fs.ftruncateSync(fd, 0);
            fs.writeSync(fd, text.slice(0, at), 0);
            await sleep(5);
            fs.writeSync(fd, text.slice(at), at);
          } finally {
            fs.closeSync(fd);
          }
          wrote(abs(op.file), text);
          break;
        }
        case 'partial': {
          // A writer that died half-way, left as is. If the prefix happens to be complete and
          // valid, nothing can tell it from a deliberate edit: it becomes the last complete text.
          const text = render(op.defs);
          const prefix = text.slice(0, Math.floor(text.length * op.cut));
          fs.writeFileSync(abs(op.file), prefix);
          wrote(abs(op.file), prefix);
          break;
        }
        case 'truncate':
          if (fs.existsSync(abs(op.file))) {
            fs.truncateSync(abs(op.file), 0);
            wrote(abs(op.file), '');
          }
          break;
        case 'rename': {
          if (op.from === op.to || !fs.existsSync(abs(op.from))) break;
          const moved = isLink(abs(op.from)) ? undefined : real(abs(op.from));
          const replaced = isLink(abs(op.to)) ? undefined : real(abs(op.to));
          const v = moved !== undefined ? last.get(moved) : undefined;
          if (replaced !== undefined) last.delete(replaced);
          fs.renameSync(abs(op.from), abs(op.to));
          if (moved !== undefined) {
            last.delete(moved);
            const r = real(abs(op.to));
            if (r !== undefined && v !== undefined) last.set(r, v);
          }
          break;
        }
        case 'delete': {
          const r = isLink(abs(op.file)) ? undefined : real(abs(op.file));
          if (r !== undefined) last.delete(r);
          fs.rmSync(abs(op.file), { force: true });
          break;
        }
        case 'symlink':
          if (op.file !== op.target) {
            const r = isLink(abs(op.file)) ? undefined : real(abs(op.file));
            if (r !== undefined) last.delete(r);
            fs.rmSync(abs(op.file), { force: true });
            fs.symlinkSync(path.relative(path.dirname(abs(op.file)), abs(op.target)), abs(op.file));
          }
          break;
        case 'loop':
          fs.rmSync(path.join(dir, `loop${op.n}.yaml`), { force: true });
          fs.symlinkSync(`loop${op.n}.yaml`, path.join(dir, `loop${op.n}.yaml`));
          break;
      }
      await sleep(2 * SETTLE_MS); // let the watch, not only the final rescan, see it
      await source.rescan();
      const missing = mustBeLive().filter((k) => !live.has(k));
      if (missing.length > 0)
        violations.push(`after ${JSON.stringify(op)}: defined but absent: ${missing.join(', ')}`);
      assert.deepEqual(violations, []);
    }
    // Every file complete again (links replaced by files): exactly what is defined is live.
    for (const f of FILES) {
      fs.rmSync(path.join(dir, f), { force: true });
      fs.writeFileSync(path.join(dir, f), '');
    }
    fs.writeFileSync(path.join(dir, FILES[0]!), render([{ name: 's0', nodePort: true, ports: [0] }]));
    await sleep(2 * SETTLE_MS);
    await source.rescan();
    assert.deepEqual([...live.keys()].sort(), ['default/s0']);
    assert.deepEqual(violations, []);
  } finally {
    await source.close();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

const table = faultTable('standalone source: property test');

test('property: random rewrites, renames, truncations, partial writes, deletes, symlinks and conflicts keep the invariants', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 8 }), (ops) => run(ops)),
    { numRuns: RUNS, endOnFailure: true },
  );
  table.row(
    `${RUNS} random op sequences`,
    'defined Services never absent, ClusterIP/NodePort stable, table exact, ends exact',
  );
});
