// North-south packet tables: the real tc and XDP programs run with BPF_PROG_RUN on packets built
// here; each row states the input, the verdict and the fields of the output packet.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { openObject, removePins, type LoadedObject, type TestMap } from './support/loader.ts';
import { packet, parse, ipPacket, type Parsed } from './support/packet.ts';
import { writeService, type TestService } from './support/services.ts';
import {
  MAP_CT,
  MAP_NAT,
  MAP_SRC_RANGES,
  MAP_STATS,
  MAP_MAGLEV,
  NP_STAT_NAMES,
  addr16,
  decodeCtEntry,
  encodeTuple,
  srcRangeEntries,
  sumPerCpu,
  type NpStat,
} from '../../../src/datapath/nodeport/maps.ts';
import { nodeportConstants } from '../../../src/datapath/nodeport/config.ts';
import { sweepExpired } from '../../../src/datapath/nodeport/conntrack.ts';
import { MAGLEV_M, encodeMaglevTable, flowHash, maglevTable } from '../../../src/datapath/maglev.ts';

const NODE = '172.30.0.1';
const NODE6 = 'fd00:172:30::1';
const CLIENT = '198.18.0.10';
const CLIENT6 = 'fd00:198:18::10';
const VIP = '198.19.0.10';
const VIP6 = 'fd00:198:19::10';
const EXT_IP = '198.19.0.20';
const LOCAL_POD = { id: 1, address: '10.244.1.5', port: 8080, local: true };
const REMOTE_POD = { id: 2, address: '10.244.2.5', port: 8080 };
const OTHER_POD = { id: 3, address: '10.244.3.5', port: 8080 };
const LOCAL_POD6 = { id: 11, address: 'fd00:10:244:1::5', port: 8080, local: true };
const REMOTE_POD6 = { id: 12, address: 'fd00:10:244:2::5', port: 8080 };

const TC = { pass: 0, drop: 2, redirect: 7 };
const XDP = { pass: 2, drop: 1, tx: 3 };

function constants(extra: Record<string, Buffer> = {}): Record<string, Buffer> {
  // forwarding: stack, so that verdicts do not depend on the test machine's routes
  return { ...nodeportConstants({ nodeAddresses: [NODE, NODE6], forwarding: 'stack' }), ...extra };
}

interface Rig {
  readonly obj: LoadedObject;
  readonly mode: 'tc' | 'xdp';
  readonly ingress: string;
  readonly verdict: { readonly pass: number; readonly drop: number; readonly bounce: number };
  map(name: string): TestMap;
  stat(name: NpStat): bigint;
  ingressRun(p: Buffer): { verdict: number; out: Parsed };
}

function makeRig(mode: 'tc' | 'xdp', pinRoot: string, extra?: Record<string, Buffer>): Rig {
  const path = `build/bpf/nodeport_${mode}.o`;
  const obj = openObject(path, { pinRoot, constants: constants(extra) });
  const ingress = mode === 'tc' ? 'ferry_np_ingress' : 'ferry_np_xdp';
  return {
    obj,
    mode,
    ingress,
    verdict:
      mode === 'tc'
        ? { pass: TC.pass, drop: TC.drop, bounce: TC.redirect }
        : { pass: XDP.pass, drop: XDP.drop, bounce: XDP.tx },
    map: (name) => obj.map(name),
    stat(name): bigint {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(NP_STAT_NAMES.indexOf(name));
      return sumPerCpu(obj.map(MAP_STATS).lookup(k) ?? Buffer.alloc(8));
    },
    ingressRun(p): { verdict: number; out: Parsed } {
      const r = obj.run(ingress, p);
      return { verdict: r.retval, out: parse(r.dataOut) };
    },
  };
}

function clearFlows(rig: Rig): void {
  for (const name of [MAP_CT, MAP_NAT]) {
    const m = rig.map(name);
    for (const k of m.keys()) m.delete(k);
  }
}

let port = 40000;
const nextPort = (): number => port++;

assert.ok(existsSync('build/bpf/nodeport_tc.o'), 'run make bpf first');

for (const mode of ['tc', 'xdp'] as const) {
  describe(`nodeport ${mode}: packet table`, () => {
    const pinRoot = `/sys/fs/bpf/ferry-np-test-${randomBytes(4).toString('hex')}`;
    let rig: Rig;
    let services: TestMap;
    let backends: TestMap;

    const svc = (s: TestService): void => writeService(services, backends, s);

    before(() => {
      rig = makeRig(mode, pinRoot);
      services = rig.map('ferry_services_v1');
      backends = rig.map('ferry_backends_v1');
      svc({ id: 1, address: VIP, port: 80, backends: [LOCAL_POD] });
      svc({ id: 2, address: '0.0.0.0', port: 30080, backends: [REMOTE_POD] }); // NodePort wildcard
      svc({ id: 3, address: EXT_IP, port: 80, protocol: 'UDP', backends: [LOCAL_POD] });
      svc({ id: 4, address: VIP, port: 81, backends: [LOCAL_POD], action: 'drop' });
      svc({ id: 5, address: VIP, port: 82, backends: [LOCAL_POD] });
      for (const [k, v] of srcRangeEntries(5, ['198.18.0.0/24'])) rig.map(MAP_SRC_RANGES).update(k, v);
      svc({ id: 6, address: VIP, port: 83, backends: [], action: 'reject' });
      svc({ id: 7, address: VIP, port: 83, protocol: 'UDP', backends: [], action: 'reject' });
      svc({ id: 8, address: VIP6, port: 80, backends: [LOCAL_POD6] });
      svc({ id: 9, address: '::', port: 30080, protocol: 'UDP', backends: [REMOTE_POD6] });
      svc({ id: 10, address: VIP6, port: 83, backends: [], action: 'reject' });
      svc({ id: 13, address: VIP6, port: 83, protocol: 'UDP', backends: [], action: 'reject' });
      svc({ id: 11, address: VIP, port: 84, backends: [LOCAL_POD, REMOTE_POD, OTHER_POD], maglev: true });
      svc({ id: 12, address: VIP, port: 85, backends: [LOCAL_POD], scope: 'internal' });
    });
    after(() => {
      rig?.obj[Symbol.dispose]();
      removePins(pinRoot);
    });

    test('LB VIP → local backend: DNAT, client address kept, checksums valid', () => {
      const sport = nextPort();
      const { verdict, out } = rig.ingressRun(
        packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport, dport: 80, flags: 'S' }),
      );
      assert.equal(verdict, rig.verdict.pass);
      assert.deepEqual([out.src, out.sport, out.dst, out.dport], [CLIENT, sport, LOCAL_POD.address, 8080]);
      assert.ok(out.checksumsOk);
    });

    test('NodePort on the node address → remote backend: DNAT + SNAT to a port in range', () => {
      const sport = nextPort();
      const { verdict, out } = rig.ingressRun(
        packet({ src: CLIENT, dst: NODE, proto: 'tcp', sport, dport: 30080 }),
      );
      assert.equal(verdict, rig.verdict.pass);
      assert.deepEqual([out.src, out.dst, out.dport], [NODE, REMOTE_POD.address, 8080]);
      assert.ok(out.sport >= 61000 && out.sport <= 65000, `nat port ${out.sport}`);
      assert.ok(out.checksumsOk);
    });

    test('reply from the remote backend is reverse-translated (SNAT + DNAT undone)', () => {
      const sport = nextPort();
      const fwd = rig.ingressRun(packet({ src: CLIENT, dst: NODE, proto: 'tcp', sport, dport: 30080 })).out;
      const { verdict, out } = rig.ingressRun(
        packet({
          src: REMOTE_POD.address,
          dst: NODE,
          proto: 'tcp',
          sport: 8080,
          dport: fwd.sport,
          flags: 'SA',
        }),
      );
      assert.equal(verdict, rig.verdict.pass);
      assert.deepEqual(
        [out.src, out.sport, out.dst, out.dport, out.flags],
        [NODE, 30080, CLIENT, sport, 'SA'],
      );
      assert.ok(out.checksumsOk);
    });

    test('packet not for a frontend (same port, other address) passes untouched', () => {
      const p = packet({ src: CLIENT, dst: '198.19.0.99', proto: 'tcp', sport: nextPort(), dport: 80 });
      const r = rig.obj.run(rig.ingress, p);
      assert.equal(r.retval, rig.verdict.pass);
      assert.deepEqual(r.dataOut, p);
    });

    test('internal-scope frontend is not served on the external interface', () => {
      const p = packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport: nextPort(), dport: 85 });
      const r = rig.obj.run(rig.ingress, p);
      assert.deepEqual([r.retval, r.dataOut], [rig.verdict.pass, p]);
    });

    test('UDP to an external IP: DNAT with a valid checksum; a zero checksum stays zero', () => {
      const sport = nextPort();
      const a = rig.ingressRun(
        packet({ src: CLIENT, dst: EXT_IP, proto: 'udp', sport, dport: 80, payload: Buffer.from('hello') }),
      );
      assert.deepEqual(
        [a.verdict, a.out.dst, a.out.dport, a.out.checksumsOk],
        [rig.verdict.pass, LOCAL_POD.address, 8080, true],
      );
      const raw = rig.obj.run(
        rig.ingress,
        packet({
          src: CLIENT,
          dst: EXT_IP,
          proto: 'udp',
          sport: nextPort(),
          dport: 80,
          payload: Buffer.from('x'),
          noUdpChecksum: true,
        }),
      );
      assert.equal(raw.dataOut.readUInt16BE(14 + 20 + 6), 0);
      assert.equal(parse(raw.dataOut).dst, LOCAL_POD.address);
    });

    test('conntrack keeps a flow on its backend after the backend set changes', () => {
      const sport = nextPort();
      const first = rig.ingressRun(
        packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport, dport: 80, flags: 'S' }),
      );
      assert.equal(first.out.dst, LOCAL_POD.address);
      svc({ id: 1, address: VIP, port: 80, backends: [OTHER_POD] });
      try {
        const again = rig.ingressRun(
          packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport, dport: 80, flags: 'A' }),
        );
        assert.equal(again.out.dst, LOCAL_POD.address, 'existing flow moved');
        const fresh = rig.ingressRun(
          packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport: nextPort(), dport: 80, flags: 'S' }),
        );
        assert.equal(fresh.out.dst, OTHER_POD.address, 'new flow ignored the change');
        const ct = rig.map(MAP_CT).lookup(encodeTuple({ src: CLIENT, dst: VIP, sport, dport: 80, proto: 6 }));
        assert.ok(ct);
        assert.equal(decodeCtEntry(ct).packets, 2n);
      } finally {
        svc({ id: 1, address: VIP, port: 80, backends: [LOCAL_POD] });
      }
    });

    test('FIN shortens the conntrack timeout', () => {
      const sport = nextPort();
      rig.ingressRun(packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport, dport: 80, flags: 'S' }));
      const key = encodeTuple({ src: CLIENT, dst: VIP, sport, dport: 80, proto: 6 });
      const open = decodeCtEntry(rig.map(MAP_CT).lookup(key) ?? Buffer.alloc(56));
      rig.ingressRun(packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport, dport: 80, flags: 'FA' }));
      const closing = decodeCtEntry(rig.map(MAP_CT).lookup(key) ?? Buffer.alloc(56));
      assert.ok(open.expiresNs - open.createdNs > 3600n * 1_000_000_000n);
      assert.ok(closing.expiresNs - closing.createdNs < 60n * 1_000_000_000n);
      assert.equal(closing.flags & 0x4, 0x4);
    });

    test('eTP=Local without a local backend (action drop) is dropped and counted', () => {
      const before = rig.stat('drop_no_local_backend');
      const { verdict } = rig.ingressRun(
        packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport: nextPort(), dport: 81 }),
      );
      assert.equal(verdict, rig.verdict.drop);
      assert.equal(rig.stat('drop_no_local_backend'), before + 1n);
    });

    test('loadBalancerSourceRanges: inside the range served, outside dropped', () => {
      const ok = rig.ingressRun(
        packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport: nextPort(), dport: 82 }),
      );
      assert.deepEqual([ok.verdict, ok.out.dst], [rig.verdict.pass, LOCAL_POD.address]);
      const before = rig.stat('drop_source_range');
      const bad = rig.ingressRun(
        packet({ src: '203.0.113.5', dst: VIP, proto: 'tcp', sport: nextPort(), dport: 82 }),
      );
      assert.equal(bad.verdict, rig.verdict.drop);
      assert.equal(rig.stat('drop_source_range'), before + 1n);
    });

    test('service without endpoints: TCP SYN answered with RST+ACK from the VIP', () => {
      const sport = nextPort();
      const { verdict, out } = rig.ingressRun(
        packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport, dport: 83, flags: 'S', seq: 5000 }),
      );
      assert.equal(verdict, rig.verdict.bounce);
      assert.deepEqual(
        [out.src, out.sport, out.dst, out.dport, out.flags, out.ack, out.length],
        [VIP, 83, CLIENT, sport, 'RA', 5001, 40],
      );
      assert.equal(out.ethDst, '020000000001');
      assert.ok(out.checksumsOk);
    });

    test('service without endpoints: UDP answered with ICMP port unreachable quoting the datagram', () => {
      const sport = nextPort();
      const { verdict, out } = rig.ingressRun(
        packet({
          src: CLIENT,
          dst: VIP,
          proto: 'udp',
          sport,
          dport: 83,
          payload: Buffer.from('ping-payload'),
        }),
      );
      assert.equal(verdict, rig.verdict.bounce);
      assert.deepEqual(
        [out.src, out.dst, out.proto, out.icmpType, out.icmpCode],
        [VIP, CLIENT, 'icmp', 3, 3],
      );
      assert.deepEqual(
        [out.quote?.src, out.quote?.dst, out.quote?.sport, out.quote?.dport],
        [CLIENT, VIP, sport, 83],
      );
      assert.ok(out.checksumsOk);
    });

    test('IPv6: service without endpoints answered with RST; ICMPv6 unreachable for UDP', () => {
      const sport = nextPort();
      const rst = rig.ingressRun(
        packet({ src: CLIENT6, dst: VIP6, proto: 'tcp', sport, dport: 83, flags: 'S', seq: 7 }),
      );
      assert.equal(rst.verdict, rig.verdict.bounce);
      assert.deepEqual(
        [rst.out.src, rst.out.dst, rst.out.flags, rst.out.ack, rst.out.checksumsOk],
        [VIP6, CLIENT6, 'RA', 8, true],
      );
      const un = rig.ingressRun(
        packet({ src: CLIENT6, dst: VIP6, proto: 'udp', sport, dport: 83, payload: Buffer.from('abc') }),
      );
      assert.equal(un.verdict, rig.verdict.bounce);
      assert.deepEqual(
        [un.out.src, un.out.dst, un.out.icmpType, un.out.icmpCode, un.out.checksumsOk],
        [VIP6, CLIENT6, 1, 4, true],
      );
      assert.deepEqual([un.out.quote?.src, un.out.quote?.dport], [CLIENT6, 83]);
    });

    test('IPv6: LB VIP → local backend and NodePort → remote backend with SNAT, replies undone', () => {
      const sport = nextPort();
      const a = rig.ingressRun(packet({ src: CLIENT6, dst: VIP6, proto: 'tcp', sport, dport: 80 }));
      assert.deepEqual(
        [a.verdict, a.out.src, a.out.dst, a.out.dport, a.out.checksumsOk],
        [rig.verdict.pass, CLIENT6, LOCAL_POD6.address, 8080, true],
      );
      const b = rig.ingressRun(
        packet({ src: CLIENT6, dst: NODE6, proto: 'udp', sport, dport: 30080, payload: Buffer.from('v6') }),
      );
      assert.deepEqual([b.out.src, b.out.dst, b.out.checksumsOk], [NODE6, REMOTE_POD6.address, true]);
      const r = rig.ingressRun(
        packet({
          src: REMOTE_POD6.address,
          dst: NODE6,
          proto: 'udp',
          sport: 8080,
          dport: b.out.sport,
          payload: Buffer.from('re'),
        }),
      );
      assert.deepEqual(
        [r.out.src, r.out.sport, r.out.dst, r.out.dport, r.out.checksumsOk],
        [NODE6, 30080, CLIENT6, sport, true],
      );
    });

    test('ICMP error from the client about a reply is translated towards the backend', () => {
      const sport = nextPort();
      rig.ingressRun(packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport, dport: 80 }));
      // the client's "fragmentation needed" quotes our reply: VIP:80 → client:sport
      const quote = ipPacket({
        src: VIP,
        dst: CLIENT,
        proto: 'tcp',
        sport: 80,
        dport: sport,
        flags: 'SA',
      }).subarray(0, 28);
      const { verdict, out } = rig.ingressRun(
        packet({ src: CLIENT, dst: VIP, proto: 'icmp', icmpType: 3, icmpCode: 4, quote }),
      );
      assert.equal(verdict, rig.verdict.pass);
      assert.deepEqual([out.src, out.dst], [CLIENT, LOCAL_POD.address]);
      assert.deepEqual(
        [out.quote?.src, out.quote?.sport, out.quote?.dst, out.quote?.dport],
        [LOCAL_POD.address, 8080, CLIENT, sport],
      );
      assert.ok(out.checksumsOk, 'outer IP, ICMP and quoted IP checksums');
    });

    test('ICMP error from a remote backend about a SNATed packet is translated towards the client', () => {
      const sport = nextPort();
      const fwd = rig.ingressRun(packet({ src: CLIENT, dst: NODE, proto: 'tcp', sport, dport: 30080 })).out;
      const quote = ipPacket({
        src: NODE,
        dst: REMOTE_POD.address,
        proto: 'tcp',
        sport: fwd.sport,
        dport: 8080,
      }).subarray(0, 28);
      const { verdict, out } = rig.ingressRun(
        packet({ src: REMOTE_POD.address, dst: NODE, proto: 'icmp', icmpType: 3, icmpCode: 3, quote }),
      );
      assert.equal(verdict, rig.verdict.pass);
      assert.deepEqual([out.src, out.dst], [NODE, CLIENT]);
      assert.deepEqual(
        [out.quote?.src, out.quote?.sport, out.quote?.dst, out.quote?.dport],
        [CLIENT, sport, NODE, 30080],
      );
      assert.ok(out.checksumsOk);
    });

    test('ICMPv6 errors about translated flows are translated both ways', () => {
      const sport = nextPort();
      rig.ingressRun(packet({ src: CLIENT6, dst: VIP6, proto: 'tcp', sport, dport: 80 }));
      const quote = ipPacket({
        src: VIP6,
        dst: CLIENT6,
        proto: 'tcp',
        sport: 80,
        dport: sport,
        flags: 'SA',
      }).subarray(0, 48);
      const a = rig.ingressRun(
        packet({ src: CLIENT6, dst: VIP6, proto: 'icmp', icmpType: 2, icmpCode: 0, quote }),
      );
      assert.equal(a.verdict, rig.verdict.pass);
      assert.deepEqual([a.out.src, a.out.dst], [CLIENT6, LOCAL_POD6.address]);
      assert.deepEqual([a.out.quote?.src, a.out.quote?.sport], [LOCAL_POD6.address, 8080]);
      assert.ok(a.out.checksumsOk, 'ICMPv6 checksum');

      const sport2 = nextPort();
      const fwd = rig.ingressRun(
        packet({
          src: CLIENT6,
          dst: NODE6,
          proto: 'udp',
          sport: sport2,
          dport: 30080,
          payload: Buffer.from('q'),
        }),
      ).out;
      const q2 = ipPacket({
        src: NODE6,
        dst: REMOTE_POD6.address,
        proto: 'udp',
        sport: fwd.sport,
        dport: 8080,
        payload: Buffer.from('q'),
      });
      const b = rig.ingressRun(
        packet({ src: REMOTE_POD6.address, dst: NODE6, proto: 'icmp', icmpType: 1, icmpCode: 4, quote: q2 }),
      );
      assert.deepEqual([b.out.src, b.out.dst], [NODE6, CLIENT6]);
      assert.deepEqual(
        [b.out.quote?.src, b.out.quote?.sport, b.out.quote?.dst, b.out.quote?.dport],
        [CLIENT6, sport2, NODE6, 30080],
      );
      assert.ok(b.out.checksumsOk);
    });

    test('Maglev: the backend is the table entry the flow hash selects', () => {
      const table = maglevTable(
        [LOCAL_POD, REMOTE_POD, OTHER_POD].map((b) => ({ name: `${b.address}:${b.port}`, id: b.id })),
      );
      const k = Buffer.alloc(4);
      k.writeUInt32LE(11);
      rig.map(MAP_MAGLEV).update(k, encodeMaglevTable(table));
      const byId = new Map([LOCAL_POD, REMOTE_POD, OTHER_POD].map((b) => [b.id, b.address]));
      const seen = new Set<string>();
      for (let i = 0; i < 24; i++) {
        const sport = nextPort();
        const { out } = rig.ingressRun(packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport, dport: 84 }));
        const expected = byId.get(table[flowHash(addr16(CLIENT), sport, 84, 6) % MAGLEV_M] ?? 0);
        assert.equal(out.dst, expected, `sport ${sport}`);
        seen.add(out.dst);
      }
      assert.equal(seen.size, 3, 'flows spread over all backends');
    });

    if (mode === 'tc') {
      test('tc egress: reply of a local backend leaves from the VIP', () => {
        const sport = nextPort();
        rig.ingressRun(packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport, dport: 80 }));
        const r = rig.obj.run(
          'ferry_np_egress',
          packet({
            src: LOCAL_POD.address,
            dst: CLIENT,
            proto: 'tcp',
            sport: 8080,
            dport: sport,
            flags: 'SA',
          }),
        );
        const out = parse(r.dataOut);
        assert.equal(r.retval, TC.pass);
        assert.deepEqual(
          [out.src, out.sport, out.dst, out.dport, out.checksumsOk],
          [VIP, 80, CLIENT, sport, true],
        );
      });
    }

    test('a missed tail call is a counted drop', () => {
      const calls = rig.map(`ferry_np_${mode}_calls_v1`);
      const k = Buffer.alloc(4);
      calls.delete(k);
      const before = rig.stat('drop_missed_tail_call');
      const { verdict } = rig.ingressRun(
        packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport: nextPort(), dport: 83 }),
      );
      assert.equal(verdict, rig.verdict.drop);
      assert.equal(rig.stat('drop_missed_tail_call'), before + 1n);
    });

    test('conntrack sweep removes only expired flows; entries are counted', () => {
      assert.ok(rig.stat('ct_new') > 0n);
      const live = sweepExpired(rig.map(MAP_CT), rig.map(MAP_NAT));
      assert.equal(live.removedCt, 0);
      assert.ok(live.liveCt > 0 && live.liveNat > 0);
      // a minute on: the FIN'd and UDP flows are gone, established TCP flows stay
      const later = sweepExpired(
        rig.map(MAP_CT),
        rig.map(MAP_NAT),
        process.hrtime.bigint() + 61n * 1_000_000_000n,
      );
      assert.ok(later.removedCt > 0 && later.liveCt > 0, JSON.stringify(later));
      const end = sweepExpired(rig.map(MAP_CT), rig.map(MAP_NAT), process.hrtime.bigint() + 10n ** 15n);
      assert.deepEqual([end.liveCt, end.liveNat], [0, 0]);
      clearFlows(rig);
    });
  });

  test(`nodeport ${mode}: SNAT port exhaustion drops and counts`, () => {
    const pinRoot = `/sys/fs/bpf/ferry-np-test-${randomBytes(4).toString('hex')}`;
    const one = Buffer.alloc(2);
    one.writeUInt16LE(61000);
    const rig = makeRig(mode, pinRoot, { cfg_snat_port_min: one, cfg_snat_port_max: one });
    try {
      writeService(rig.map('ferry_services_v1'), rig.map('ferry_backends_v1'), {
        id: 2,
        address: '0.0.0.0',
        port: 30080,
        backends: [REMOTE_POD],
      });
      const a = rig.ingressRun(packet({ src: CLIENT, dst: NODE, proto: 'tcp', sport: 1111, dport: 30080 }));
      assert.deepEqual([a.verdict, a.out.sport], [rig.verdict.pass, 61000]);
      const b = rig.ingressRun(packet({ src: CLIENT, dst: NODE, proto: 'tcp', sport: 2222, dport: 30080 }));
      assert.equal(b.verdict, rig.verdict.drop);
      assert.equal(rig.stat('drop_snat_ports_exhausted'), 1n);
    } finally {
      rig.obj[Symbol.dispose]();
      removePins(pinRoot);
    }
  });
}
