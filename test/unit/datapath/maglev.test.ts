import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAGLEV_M, maglevTable } from '../../../src/datapath/maglev.ts';

const backends = (n: number, idBase = 1): Array<{ name: string; id: number }> =>
  Array.from({ length: n }, (_, i) => ({ name: `10.244.${i % 3}.${10 + i}:8080`, id: idBase + i }));

test('maglev: table is full and balanced within a few percent', () => {
  const t = maglevTable(backends(5));
  const counts = new Map<number, number>();
  for (const id of t) counts.set(id, (counts.get(id) ?? 0) + 1);
  assert.equal(counts.size, 5);
  assert.ok(!counts.has(0));
  for (const c of counts.values()) assert.ok(Math.abs(c - MAGLEV_M / 5) < MAGLEV_M * 0.03, `count ${c}`);
});

test('maglev: same names give the same backends regardless of input order or node-local ids', () => {
  const a = backends(4);
  const b = [...a].reverse().map((x) => ({ ...x, id: x.id + 100 }));
  const ta = maglevTable(a);
  const tb = maglevTable(b);
  for (let i = 0; i < MAGLEV_M; i++) assert.equal((tb[i] ?? 0) - 100, ta[i]);
});

test('maglev: removing one backend moves few positions besides its own', () => {
  const all = backends(10);
  const before = maglevTable(all);
  const removed = all[3]?.id ?? 0;
  const after = maglevTable(all.filter((b) => b.id !== removed));
  let moved = 0;
  for (let i = 0; i < MAGLEV_M; i++) if (before[i] !== removed && before[i] !== after[i]) moved++;
  assert.ok(moved < MAGLEV_M * 0.05, `${moved} positions of surviving backends moved`);
});

test('maglev: no backends → empty table', () => {
  assert.ok(maglevTable([]).every((x) => x === 0));
});
