// The standalone source on a large manifest directory: S Services, each selecting P Pods, pods
// spread over F files. Figures: the initial list (read, parse, allocate, build slices, emit) and
// the latency from rewriting one pod file (one Pod flips readiness) to its change being emitted.
// Baseline measured in the same run: reading and parsing that one pod file alone, the part no
// design can skip; the ratio is what recomputing the whole output per batch costs on top.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseManifestFile } from '../src/sources/manifest/parse.ts';
import { ManifestSource, type ManifestChange } from '../src/sources/manifest/source.ts';

const SERVICES = Number(process.env.SERVICES ?? 500);
const PODS_PER_SERVICE = Number(process.env.PODS_PER_SERVICE ?? 10);
const FILES = Number(process.env.FILES ?? 20);
const ROUNDS = Number(process.env.ROUNDS ?? 15);

function stats(samples: readonly number[]): { median: number; p99: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { median: at(0.5), p99: at(0.99) };
}

const pod = (svc: number, i: number, ready: boolean): string => {
  const n = svc * PODS_PER_SERVICE + i;
  return `apiVersion: v1
kind: Pod
metadata: {name: p-${svc}-${i}, labels: {app: s${svc}}}
spec: {nodeName: node-${1 + (n % 3)}, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {podIPs: [{ip: 10.${100 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}}], conditions: [{type: Ready, status: "${ready ? 'True' : 'False'}"}]}
`;
};

function podFile(f: number, flip: boolean): string {
  const docs: string[] = [];
  for (let s = f; s < SERVICES; s += FILES)
    for (let i = 0; i < PODS_PER_SERVICE; i++) docs.push(pod(s, i, !(flip && s === f && i === 0)));
  return docs.join('---\n');
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-manifests-'));
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-state-'));
try {
  const services: string[] = [];
  for (let s = 0; s < SERVICES; s++)
    services.push(
      `apiVersion: v1\nkind: Service\nmetadata: {name: s${s}}\nspec: {selector: {app: s${s}}, ports: [{name: http, port: 80, targetPort: http}]}\n`,
    );
  fs.writeFileSync(path.join(dir, 'services.yaml'), services.join('---\n'));
  for (let f = 0; f < FILES; f++) fs.writeFileSync(path.join(dir, `pods-${f}.yaml`), podFile(f, false));

  let changes: ManifestChange[] = [];
  const start = performance.now();
  const source = ManifestSource.open(dir, {
    stateDir,
    rescanMs: 600_000,
    watch: false,
    onChange: (c) => changes.push(c),
  });
  await source.initialListDone;
  const initial = performance.now() - start;
  const initialChanges = changes.length;

  const edit: number[] = [];
  const parse: number[] = [];
  const target = path.join(dir, 'pods-0.yaml');
  for (let r = 0; r < ROUNDS; r++) {
    const text = podFile(0, r % 2 === 0);
    changes = [];
    const t0 = performance.now();
    fs.writeFileSync(target, text);
    await source.rescan();
    edit.push(performance.now() - t0);
    if (changes.length !== 1) throw new Error(`expected one slice change, got ${changes.length}`);
    const t1 = performance.now();
    parseManifestFile('pods-0.yaml', fs.readFileSync(target, 'utf8'));
    parse.push(performance.now() - t1);
  }
  await source.close();

  const e = stats(edit);
  const p = stats(parse);
  console.log(`manifest source: ${SERVICES} services × ${PODS_PER_SERVICE} pods in ${FILES + 1} files`);
  console.log(`  initial list → ${initialChanges} changes emitted: ${initial.toFixed(0)} ms`);
  console.log(
    `  one pod edit → one slice change: median ${e.median.toFixed(1)} ms, p99 ${e.p99.toFixed(1)} ms`,
  );
  console.log(
    `  baseline (read + parse that one file): median ${p.median.toFixed(1)} ms, p99 ${p.p99.toFixed(1)} ms`,
  );
  console.log(`  ratio edit/baseline (median): ${(e.median / p.median).toFixed(1)}×`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(stateDir, { recursive: true, force: true });
}
