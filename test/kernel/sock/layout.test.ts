// Every codec against the C struct it mirrors, as the compiler laid it out: the BTF of
// build/bpf/sock.o gives each struct's size and each member's offset and width; a sample encoded in
// TypeScript must carry each field's bytes exactly there. (No kernel needed, but the object is
// built by `make bpf`, which the kernel tier runs first.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as codec from '../../../src/datapath/lb-codec.ts';

const OBJECT = fileURLToPath(new URL('../../../build/bpf/sock.o', import.meta.url));

interface BtfType {
  readonly id: number;
  readonly kind: string;
  readonly name: string;
  readonly size?: number;
  readonly type_id?: number;
  readonly nr_elems?: number;
  readonly members?: readonly {
    readonly name: string;
    readonly type_id: number;
    readonly bits_offset: number;
  }[];
}

const types = new Map<number, BtfType>();
for (const t of (
  JSON.parse(execFileSync('bpftool', ['btf', 'dump', 'file', OBJECT, '-j'], { encoding: 'utf8' })) as {
    types: BtfType[];
  }
).types)
  types.set(t.id, t);

function sizeOf(id: number): number {
  const t = types.get(id)!;
  if (t.kind === 'ARRAY') return t.nr_elems! * sizeOf(t.type_id!);
  if (t.kind === 'TYPEDEF' || t.kind === 'CONST' || t.kind === 'VOLATILE') return sizeOf(t.type_id!);
  return t.size!;
}

/** member name → [offset, width] in bytes, and the struct's size. */
function layout(name: string): { size: number; members: Map<string, [number, number]> } {
  const t = [...types.values()].find((x) => x.kind === 'STRUCT' && x.name === name);
  assert.ok(t, `struct ${name} in the BTF of sock.o`);
  return {
    size: t.size!,
    members: new Map(t.members!.map((m) => [m.name, [m.bits_offset / 8, sizeOf(m.type_id)]])),
  };
}

const v4 = (a: string): string =>
  `00000000000000000000ffff${a
    .split('.')
    .map((x) => Number(x).toString(16).padStart(2, '0'))
    .join('')}`;

/** Each C member (pads excluded) must hold exactly `hex` at its BTF offset; the size must agree. */
function check(struct: string, size: number, buf: Buffer, fields: Record<string, string>): void {
  const l = layout(struct);
  assert.equal(size, l.size, `${struct}: size`);
  assert.equal(buf.length, l.size, `${struct}: encoded length`);
  const named = [...l.members.keys()].filter((m) => m !== 'pad');
  assert.deepEqual(Object.keys(fields).sort(), named.sort(), `${struct}: every member has a codec field`);
  for (const [member, hex] of Object.entries(fields)) {
    const [offset, width] = l.members.get(member)!;
    assert.equal(buf.subarray(offset, offset + width).toString('hex'), hex, `${struct}.${member}`);
  }
}

test('lb.h structs: service key and value, backend, revnat', () => {
  check(
    'lb_service_key',
    codec.SERVICE_KEY_SIZE,
    codec.encodeServiceKey({
      address: '10.96.0.10',
      port: 0x1f90,
      protocol: 'UDP',
      scope: 'external',
      slot: 0x0203,
    }),
    {
      address: v4('10.96.0.10'),
      port: '1f90',
      protocol: '11',
      scope: '01',
      slot: '0302',
    },
  );
  check(
    'lb_service',
    codec.SERVICE_VALUE_SIZE,
    codec.encodeServiceValue({
      backendId: 0x01020304,
      count: 0x0506,
      flags: 0x0708,
      serviceId: 0x090a0b0c,
      affinityTimeout: 0x0d0e0f10,
      algorithm: 1,
      kind: 'LoadBalancer',
    }),
    {
      backend_id: '04030201',
      count: '0605',
      flags: '0807',
      service_id: '0c0b0a09',
      affinity_timeout: '100f0e0d',
      algorithm: '01',
      kind: '02',
    },
  );
  check(
    'lb_backend',
    codec.BACKEND_VALUE_SIZE,
    codec.encodeBackend({
      address: 'fd00::1',
      port: 8080,
      protocol: 'TCP',
      state: 'terminating',
      nodeLocal: true,
    }),
    {
      address: 'fd000000000000000000000000000001',
      port: '1f90',
      protocol: '06',
      state: '01',
      flags: '01',
    },
  );
  check('lb_revnat', codec.REVNAT_VALUE_SIZE, codec.encodeRevNat({ address: '10.96.0.1', port: 443 }), {
    address: v4('10.96.0.1'),
    port: '01bb',
  });
});

test('sock_maps.h structs: socket reverse NAT, affinity, NodePort key; reasons match the enum', () => {
  check(
    'sock_revnat_key',
    codec.SOCK_REVNAT_KEY_SIZE,
    codec.encodeSockRevNatKey({ cookie: 0x0102030405060708n, address: '10.200.0.1', port: 8080 }),
    {
      cookie: '0807060504030201',
      address: v4('10.200.0.1'),
      port: '1f90',
    },
  );
  check(
    'sock_revnat',
    codec.SOCK_REVNAT_VALUE_SIZE,
    codec.encodeSockRevNat({ address: 'fd00:96::10', port: 53, serviceId: 7 }),
    {
      address: 'fd000096000000000000000000000010',
      port: '0035',
      service_id: '07000000',
    },
  );
  check('affinity_key', codec.AFFINITY_KEY_SIZE, codec.encodeAffinityKey({ client: 5n, serviceId: 9 }), {
    client: '0500000000000000',
    service_id: '09000000',
  });
  check(
    'affinity',
    codec.AFFINITY_VALUE_SIZE,
    codec.encodeAffinity({ lastUsedNs: 0x10n, backendId: 3, slot: 2 }),
    {
      last_used_ns: '1000000000000000',
      backend_id: '03000000',
      slot: '0200',
    },
  );
  check('nodeport_key', codec.NODEPORT_KEY_SIZE, codec.encodeNodePortKey(30080, 'TCP'), {
    port: '7580',
    protocol: '06',
  });
  // enum sock_reason is checked against the BTF by test/kernel/observe/reasons.test.ts.
});

test('decoders invert the encoders', () => {
  const k = { cookie: 42n, address: '::ffff:1.2.3.4', port: 80 };
  assert.deepEqual(codec.decodeSockRevNatKey(codec.encodeSockRevNatKey(k)), { ...k, address: '1.2.3.4' });
  const r = { address: 'fd00::5', port: 53, serviceId: 11 };
  assert.deepEqual(codec.decodeSockRevNat(codec.encodeSockRevNat(r)), r);
  const a = { lastUsedNs: 123456789n, backendId: 8, slot: 4 };
  assert.deepEqual(codec.decodeAffinity(codec.encodeAffinity(a)), a);
  assert.deepEqual(codec.decodeAffinityKey(codec.encodeAffinityKey({ client: 9n, serviceId: 2 })), {
    client: 9n,
    serviceId: 2,
  });
});
