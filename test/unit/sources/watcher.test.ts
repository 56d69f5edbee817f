// The directory watcher on a real temp directory with real fs.watch events (the periodic rescan
// is set far away so it cannot be what finds the changes).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatIssue } from '../../../src/sources/manifest/parse.ts';
import { ManifestWatcher, type ManifestObjectChange } from '../../../src/sources/manifest/watcher.ts';

function tempDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-manifests-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const node = (name: string, zone = 'a'): string =>
  `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${name}\n  labels: {topology.kubernetes.io/zone: ${zone}}\n`;
const docs = (...d: string[]): string => d.join('---\n');

/** A watcher whose change batches can be awaited one at a time. */
interface Opened {
  readonly w: ManifestWatcher;
  readonly next: () => Promise<string[]>;
  /** No batch arrives within a few debounce periods. */
  readonly quiet: () => Promise<void>;
}

async function open(t: TestContext, dir: string): Promise<Opened> {
  const batches: string[][] = [];
  let wake: (() => void) | undefined;
  const w = ManifestWatcher.open(dir, {
    debounceMs: 30,
    rescanMs: 600_000,
    onChanges: (changes) => {
      batches.push(changes.map(describe));
      wake?.();
    },
  });
  t.after(() => w.close());
  const next = async (): Promise<string[]> => {
    const deadline = Date.now() + 5000;
    while (batches.length === 0) {
      if (Date.now() > deadline) throw new Error('no change batch within 5 s');
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 100);
      });
    }
    return batches.shift()!;
  };
  const quiet = async (): Promise<void> => {
    await sleep(400);
    assert.deepEqual(batches, []);
  };
  await w.initialListDone;
  return { w, next, quiet };
}

function describe(c: ManifestObjectChange): string {
  const op = c.previous === undefined ? 'add' : c.current === undefined ? 'delete' : 'update';
  return `${op} ${c.kind} ${c.key}`;
}

test('initial list, then edit, add, delete and rename of files produce exactly the right changes', async (t) => {
  const dir = tempDir(t);
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'nodes.yaml'), docs(node('n1'), node('n2')));
  fs.writeFileSync(path.join(dir, 'sub', 'n3.yml'), node('n3'));
  const { w, next, quiet } = await open(t, dir);
  assert.deepEqual((await next()).sort(), ['add Node n1', 'add Node n2', 'add Node n3']);
  assert.equal(w.synced, true);

  fs.writeFileSync(path.join(dir, 'nodes.yaml'), docs(node('n1'), node('n2', 'b')));
  assert.deepEqual(await next(), ['update Node n2']);

  fs.writeFileSync(
    path.join(dir, 'sub', 'more.json'),
    JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n4' } }),
  );
  assert.deepEqual(await next(), ['add Node n4']);

  fs.rmSync(path.join(dir, 'sub', 'n3.yml'));
  assert.deepEqual(await next(), ['delete Node n3']);

  // A rename moves the definition; the objects are the same, so nothing changes.
  fs.renameSync(path.join(dir, 'nodes.yaml'), path.join(dir, 'sub', 'renamed.yaml'));
  await quiet();
  assert.equal(w.locate('Node n1')?.file, path.join('sub', 'renamed.yaml'));

  // Renaming to a name that is not a manifest deletes its objects.
  fs.renameSync(path.join(dir, 'sub', 'renamed.yaml'), path.join(dir, 'sub', 'renamed.yaml.bak'));
  assert.deepEqual((await next()).sort(), ['delete Node n1', 'delete Node n2']);

  // A whole new directory.
  fs.mkdirSync(path.join(dir, 'later'));
  fs.writeFileSync(path.join(dir, 'later', 'x.yaml'), node('n5'));
  assert.deepEqual(await next(), ['add Node n5']);
});

test('a comment or formatting edit is a no-op; an editor save (temp + rename) is one change', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'nodes.yaml');
  fs.writeFileSync(file, node('n1'));
  const { next, quiet } = await open(t, dir);
  assert.deepEqual(await next(), ['add Node n1']);

  fs.writeFileSync(file, `# a comment\n${node('n1').replace('name: n1', 'name: "n1"')}`);
  await quiet();

  // vim-style: write a swap file and a temp file, rename over the target, remove the swap.
  fs.writeFileSync(path.join(dir, '.nodes.yaml.swp'), 'binary junk: [');
  fs.writeFileSync(path.join(dir, '.nodes.yaml.tmp'), node('n1', 'z'));
  fs.renameSync(path.join(dir, '.nodes.yaml.tmp'), file);
  fs.rmSync(path.join(dir, '.nodes.yaml.swp'));
  assert.deepEqual(await next(), ['update Node n1']);
});

test('a file that stops parsing keeps its objects and reports file, document and reason until fixed', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'nodes.yaml');
  fs.writeFileSync(file, docs(node('n1'), node('n2')));
  fs.writeFileSync(path.join(dir, 'other.yaml'), node('n9'));
  const { w, next } = await open(t, dir);
  await next();

  // A write caught half-way: the second document is cut inside a flow mapping.
  fs.writeFileSync(
    file,
    docs(node('n1', 'b'), 'apiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {a: '),
  );
  fs.writeFileSync(path.join(dir, 'other.yaml'), node('n9', 'b'));
  assert.deepEqual(await next(), ['update Node n9'], 'the broken file changes nothing, the good one does');
  const issues = w.issues().map(formatIssue);
  assert.equal(issues.length, 1);
  assert.match(issues[0]!, /^nodes\.yaml#2: YAML: line \d+ column \d+: /);

  // A schema error in one document is not a syntax error: the others are used, and the bad one
  // keeps its last valid version (a rejected apply deletes nothing).
  fs.writeFileSync(file, docs(node('n1', 'b'), 'apiVersion: v1\nkind: Node\nmetadata: {}\n'));
  assert.deepEqual((await next()).sort(), ['update Node n1']);
  assert.deepEqual(w.issues().map(formatIssue), ['nodes.yaml#2: metadata.name: required']);

  fs.writeFileSync(file, docs(node('n1', 'b'), node('n2', 'c')));
  assert.deepEqual(await next(), ['update Node n2']);
  assert.deepEqual(w.issues(), []);
});

test('a duplicate across files: first path wins, removing it hands over to the second', async (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'a.yaml'), node('n1', 'from-a'));
  fs.writeFileSync(path.join(dir, 'b.yaml'), node('n1', 'from-b'));
  const { w, next } = await open(t, dir);
  assert.deepEqual(await next(), ['add Node n1']);
  assert.deepEqual(w.issues().map(formatIssue), [
    'b.yaml#1: Node n1 duplicate: already defined in a.yaml#1, which is used',
  ]);
  fs.rmSync(path.join(dir, 'a.yaml'));
  assert.deepEqual(await next(), ['update Node n1']);
  assert.equal(w.locate('Node n1')?.file, 'b.yaml');
  assert.deepEqual(w.issues(), []);
});

test('an empty directory still completes the initial list once; close() stops deliveries', async (t) => {
  const dir = tempDir(t);
  const { w, next, quiet } = await open(t, dir);
  assert.deepEqual(await next(), []);
  await w.close();
  fs.writeFileSync(path.join(dir, 'a.yaml'), node('n1'));
  await quiet();
  assert.throws(
    () => ManifestWatcher.open(path.join(dir, 'missing'), { onChanges: () => {} }),
    /FERRY|manifest directory/,
  );
});

test('with fs.watch off, the periodic rescan alone finds changes', async (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'a.yaml'), node('n1'));
  const seen: string[][] = [];
  const w = ManifestWatcher.open(dir, {
    watch: false,
    rescanMs: 100,
    onChanges: (c) => seen.push(c.map(describe)),
  });
  t.after(() => w.close());
  await w.initialListDone;
  fs.writeFileSync(path.join(dir, 'a.yaml'), node('n1', 'b'));
  const deadline = Date.now() + 5000;
  while (seen.length < 2 && Date.now() < deadline) await sleep(50);
  assert.deepEqual(seen, [['add Node n1'], ['update Node n1']]);
});

test('a mounted ConfigMap (..data symlink swap) is followed; hidden folders are not read twice', async (t) => {
  const dir = tempDir(t);
  const version = (v: string, zone: string): void => {
    fs.mkdirSync(path.join(dir, `..${v}`));
    fs.writeFileSync(path.join(dir, `..${v}`, 'nodes.yaml'), node('n1', zone));
  };
  version('v1', 'a');
  fs.symlinkSync('..v1', path.join(dir, '..data'));
  fs.symlinkSync(path.join('..data', 'nodes.yaml'), path.join(dir, 'nodes.yaml'));
  const { w, next } = await open(t, dir);
  assert.deepEqual(await next(), ['add Node n1']);
  assert.deepEqual(w.issues(), [], 'no duplicate from the ..v1 folder');

  // What the kubelet does on a ConfigMap update: new folder, new ..data_tmp link, rename over ..data.
  version('v2', 'b');
  fs.symlinkSync('..v2', path.join(dir, '..data_tmp'));
  fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  fs.rmSync(path.join(dir, '..v1'), { recursive: true });
  assert.deepEqual(await next(), ['update Node n1']);
});

test('a vanished directory keeps the objects and says so; its return is picked up', async (t) => {
  const parent = tempDir(t);
  const dir = path.join(parent, 'manifests');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'a.yaml'), node('n1'));
  const seen: string[][] = [];
  const w = ManifestWatcher.open(dir, { rescanMs: 100, onChanges: (c) => seen.push(c.map(describe)) });
  t.after(() => w.close());
  await w.initialListDone;
  fs.renameSync(dir, path.join(parent, 'away'));
  await w.rescan();
  assert.deepEqual(seen, [['add Node n1']]);
  assert.match(formatIssue(w.issues()[0]!), /^\.: directory unreadable: /);
  fs.renameSync(path.join(parent, 'away'), dir);
  fs.writeFileSync(path.join(dir, 'a.yaml'), node('n1', 'back'));
  const deadline = Date.now() + 5000;
  while (seen.length < 2 && Date.now() < deadline) await sleep(50);
  assert.deepEqual(seen, [['add Node n1'], ['update Node n1']]);
  assert.deepEqual(w.issues(), []);
});
