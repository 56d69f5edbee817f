// The names TypeScript gives the datapath's verdicts, reasons and counter slots against the C
// enums of bpf/lib/reasons.h, as they are in the objects' BTF (the counter maps are keyed by their
// enum, the explain contexts carry the verdict and reason): name n must be the enumerator of value
// n, and every enumerator but the *_MAX bound must have a name. (No kernel needed, but the objects
// are built by `make bpf`, which the kernel tier runs first.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NP_STAT_NAMES, REASONS, SOCK_REASONS, VERDICTS } from '../../../src/datapath/events/reasons.ts';
import { EVENT_COUNTERS } from '../../../src/datapath/events/codec.ts';

interface BtfEnum {
  readonly kind: string;
  readonly name: string;
  readonly values?: readonly { readonly name: string; readonly val: number }[];
}

function enumOf(object: string, name: string): Map<number, string> {
  const file = fileURLToPath(new URL(`../../../build/bpf/${object}`, import.meta.url));
  const { types } = JSON.parse(
    execFileSync('bpftool', ['btf', 'dump', 'file', file, '-j'], { encoding: 'utf8' }),
  ) as {
    types: BtfEnum[];
  };
  const t = types.find((x) => x.kind === 'ENUM' && x.name === name);
  assert.ok(t?.values, `enum ${name} in the BTF of ${object}`);
  return new Map(t.values.filter((v) => !v.name.endsWith('_MAX')).map((v) => [v.val, v.name]));
}

/** Each TypeScript name at its index, spelled as the C enumerator would be. */
function check(c: Map<number, string>, names: readonly string[], spell: (name: string) => string): void {
  const ts = new Map(names.map((n, i) => [i, n] as const).filter(([, n]) => n !== ''));
  assert.deepEqual(
    [...ts].map(([i, n]) => [i, spell(n)]),
    [...c].sort(([a], [b]) => a - b),
  );
}

const upper = (prefix: string) => (name: string) =>
  `${prefix}${name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`;

test('enum sock_reason is SOCK_REASONS', () => {
  for (const object of ['sock.o', 'explain.o'])
    check(enumOf(object, 'sock_reason'), SOCK_REASONS, upper('SOCK_'));
});

test('enum np_stat is NP_STAT_NAMES', () => {
  for (const object of ['nodeport_tc.o', 'nodeport_xdp.o'])
    check(enumOf(object, 'np_stat'), NP_STAT_NAMES, upper('NP_STAT_'));
});

test('enum ferry_ev_counter is EVENT_COUNTERS', () => {
  for (const object of ['sock.o', 'nodeport_tc.o'])
    check(enumOf(object, 'ferry_ev_counter'), EVENT_COUNTERS, upper('FERRY_EV_'));
});

test('enum ferry_verdict and enum ferry_reason are VERDICTS and REASONS', () => {
  for (const object of ['explain.o', 'explain_nodeport.o']) {
    check(enumOf(object, 'ferry_verdict'), VERDICTS, upper('FERRY_VERDICT_'));
    check(enumOf(object, 'ferry_reason'), REASONS, upper('FERRY_REASON_'));
  }
});
