// The explain programs' context structs against their TypeScript offset tables, as the compiler
// laid them out (the BTF of build/bpf/explain*.o): a drifted offset would decode another field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SOCKET_CTX } from '../../../src/datapath/explain.ts';
import { PACKET_CTX } from '../../../src/datapath/explain-packet.ts';

interface BtfType {
  readonly kind: string;
  readonly name: string;
  readonly size?: number;
  readonly members?: readonly { readonly name: string; readonly bits_offset: number }[];
}

function struct(object: string, name: string): BtfType {
  const file = fileURLToPath(new URL(`../../../build/bpf/${object}`, import.meta.url));
  const { types } = JSON.parse(
    execFileSync('bpftool', ['btf', 'dump', 'file', file, '-j'], { encoding: 'utf8' }),
  ) as { types: BtfType[] };
  const t = types.find((x) => x.kind === 'STRUCT' && x.name === name);
  assert.ok(t, `struct ${name} in ${object}`);
  return t;
}

const snake = (camel: string): string => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function check(
  object: string,
  name: string,
  table: Readonly<Record<string, number>>,
  renamed: Readonly<Record<string, string>> = {},
): void {
  const t = struct(object, name);
  assert.equal(table.size, t.size, `${name}: size`);
  const offsets = new Map(t.members!.map((m) => [m.name, m.bits_offset / 8]));
  for (const [field, offset] of Object.entries(table)) {
    if (field === 'size') continue;
    const member = renamed[field] ?? snake(field);
    assert.equal(offsets.get(member), offset, `${name}.${member}`);
  }
  // Every member that is not padding is decoded.
  const covered = new Set(Object.keys(table).map((f) => renamed[f] ?? snake(f)));
  for (const member of offsets.keys())
    if (!member.startsWith('pad'))
      assert.ok(covered.has(member), `${name}.${member} has no offset in the table`);
}

test('explain_sock_ctx matches SOCKET_CTX', () => {
  check('explain.o', 'explain_sock_ctx', SOCKET_CTX, { count: 'count', backend: 'backend' });
});

test('explain_packet_ctx matches PACKET_CTX', () => {
  check('explain_nodeport.o', 'explain_packet_ctx', PACKET_CTX, { proto: 'proto', byMaglev: 'by_maglev' });
});
