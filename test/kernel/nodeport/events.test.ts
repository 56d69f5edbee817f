// North-south flow events: the real tc and XDP programs run with BPF_PROG_RUN, and each decision
// leaves exactly the event `ferry observe` needs in the shared ring buffer — new flow (DNAT, SNAT,
// Maglev), established, reply, and each drop or reject with its reason.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { BpfMap } from '../../../src/datapath/bpf/index.ts';
import { MappedRingReader } from '../../../src/datapath/events/ring-reader.ts';
import { nodeportConstants } from '../../../src/datapath/nodeport/config.ts';
import { MAP_MAGLEV, MAP_SRC_RANGES, srcRangeEntries } from '../../../src/datapath/nodeport/maps.ts';
import { encodeMaglevTable, maglevTable } from '../../../src/datapath/maglev.ts';
import { decodeEvent, type RawEvent } from '../../../src/datapath/events/codec.ts';
import { openObject, removePins, type LoadedObject, type TestMap } from './support/loader.ts';
import { packet, parse } from './support/packet.ts';
import { writeService } from './support/services.ts';

const NODE = '172.30.0.1';
const CLIENT = '198.18.0.10';
const VIP = '198.19.0.10';
const LOCAL = { id: 1, address: '10.244.1.5', port: 8080, local: true };
const REMOTE = { id: 2, address: '10.244.2.5', port: 8080 };

for (const mode of ['tc', 'xdp'] as const) {
  describe(`nodeport ${mode}: flow events`, () => {
    const pinRoot = `/sys/fs/bpf/ferry-np-ev-${randomBytes(4).toString('hex')}`;
    const ingress = mode === 'tc' ? 'ferry_np_ingress' : 'ferry_np_xdp';
    const origin = mode === 'tc' ? 'tc-ingress' : 'xdp';
    let obj: LoadedObject;
    let ring: BpfMap;
    let reader: MappedRingReader;
    const events: RawEvent[] = [];
    let sport = 41000;

    /** Runs one packet and returns the events it produced. */
    const run = (p: Buffer): { out: ReturnType<typeof parse>; events: RawEvent[] } => {
      const r = obj.run(ingress, p);
      reader.consume();
      return { out: parse(r.dataOut), events: events.splice(0) };
    };

    before(() => {
      obj = openObject(`build/bpf/nodeport_${mode}.o`, {
        pinRoot,
        constants: nodeportConstants({ nodeAddresses: [NODE], forwarding: 'stack' }),
      });
      const services: TestMap = obj.map('ferry_services_v1');
      const backends: TestMap = obj.map('ferry_backends_v1');
      writeService(services, backends, { id: 1, address: VIP, port: 80, backends: [LOCAL] });
      writeService(services, backends, { id: 2, address: '0.0.0.0', port: 30080, backends: [REMOTE] });
      writeService(services, backends, { id: 3, address: VIP, port: 81, backends: [LOCAL], action: 'drop' });
      writeService(services, backends, { id: 4, address: VIP, port: 82, backends: [LOCAL] });
      for (const [k, v] of srcRangeEntries(4, ['203.0.113.0/24'])) obj.map(MAP_SRC_RANGES).update(k, v);
      writeService(services, backends, { id: 5, address: VIP, port: 83, backends: [], action: 'reject' });
      writeService(services, backends, { id: 6, address: VIP, port: 84, backends: [LOCAL], maglev: true });
      ring = BpfMap.openPinned(`${pinRoot}/ferry_events_v1`);
      reader = new MappedRingReader(ring, (b) => events.push(decodeEvent(b)));
    });
    after(() => {
      reader?.close();
      ring?.close();
      obj?.[Symbol.dispose]();
      removePins(pinRoot);
    });

    test('a new flow: one FORWARDED/new event with the translation; the 2nd packet says established, the 3rd nothing', () => {
      const port = sport++;
      const first = run(packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport: port, dport: 80, flags: 'S' }));
      assert.equal(first.events.length, 1);
      const e = first.events[0]!;
      assert.deepEqual(
        [e.origin, e.verdict, e.reason, e.ctState, e.src, e.srcPort, e.dst, e.dstPort, e.xlated, e.xlatedPort],
        [origin, 'FORWARDED', 'NONE', 'new', CLIENT, port, VIP, 80, LOCAL.address, 8080],
      );
      assert.deepEqual([e.serviceId, e.backendId, e.protocol, e.flags], [1, 1, 6, ['dnat']]);
      assert.ok(e.ifindex > 0 || mode === 'xdp', 'tc knows the interface');
      const second = run(packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport: port, dport: 80, flags: 'A' }));
      assert.deepEqual(
        second.events.map((x) => [x.verdict, x.ctState, x.xlated]),
        [['FORWARDED', 'established', LOCAL.address]],
      );
      const third = run(packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport: port, dport: 80, flags: 'A' }));
      assert.equal(third.events.length, 0, 'later packets are counted, not reported');
    });

    test('NodePort to a remote backend: SNAT flagged; the first reply is one REVNAT event told from the client side', () => {
      const port = sport++;
      const fwd = run(packet({ src: CLIENT, dst: NODE, proto: 'tcp', sport: port, dport: 30080, flags: 'S' }));
      assert.deepEqual(fwd.events.map((x) => x.flags), [['dnat', 'snat']]);
      const reply = () =>
        run(packet({ src: REMOTE.address, dst: NODE, proto: 'tcp', sport: 8080, dport: fwd.out.sport, flags: 'SA' }));
      const r1 = reply();
      assert.equal(r1.events.length, 1);
      const e = r1.events[0]!;
      assert.deepEqual(
        [e.verdict, e.ctState, e.src, e.srcPort, e.dst, e.dstPort, e.xlated, e.serviceId, e.backendId],
        ['FORWARDED', 'reply', CLIENT, port, NODE, 30080, REMOTE.address, 2, 2],
      );
      assert.ok(e.flags.includes('revnat') && e.flags.includes('snat'), e.flags.join());
      assert.equal(reply().events.length, 0, 'one reply event per flow');
    });

    const drops: [string, { src: string; dport: number }, string, string, number][] = [
      ['eTP=Local without a local backend', { src: CLIENT, dport: 81 }, 'DROPPED', 'NO_LOCAL_BACKEND', 3],
      ['client outside loadBalancerSourceRanges', { src: CLIENT, dport: 82 }, 'DROPPED', 'SOURCE_RANGE', 4],
      ['service without endpoints', { src: CLIENT, dport: 83 }, 'REJECTED', 'NO_BACKEND', 5],
    ];
    for (const [name, p, verdict, reason, service] of drops) {
      test(`${name}: ${verdict}/${reason}`, () => {
        const port = sport++;
        const { events: got } = run(packet({ src: p.src, dst: VIP, proto: 'tcp', sport: port, dport: p.dport, flags: 'S' }));
        assert.deepEqual(
          got.map((x) => [x.origin, x.verdict, x.reason, x.serviceId, x.src, x.srcPort, x.dst, x.dstPort, x.xlated]),
          [[origin, verdict, reason, service, p.src, port, VIP, p.dport, undefined]],
        );
      });
    }

    test('a client inside the source range is served (the range event is not a blanket drop)', () => {
      const { events: got } = run(packet({ src: '203.0.113.7', dst: VIP, proto: 'tcp', sport: sport++, dport: 82, flags: 'S' }));
      assert.deepEqual(got.map((x) => [x.verdict, x.ctState]), [['FORWARDED', 'new']]);
    });

    test('a backend from the Maglev table is flagged; the random fallback (no table yet) is not', () => {
      const before = run(packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport: sport++, dport: 84, flags: 'S' }));
      assert.deepEqual(before.events.map((x) => x.flags), [['dnat']]);
      const k = Buffer.alloc(4);
      k.writeUInt32LE(6);
      obj.map(MAP_MAGLEV).update(k, encodeMaglevTable(maglevTable([{ name: 'local', id: LOCAL.id }])));
      const after = run(packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport: sport++, dport: 84, flags: 'S' }));
      assert.deepEqual(after.events.map((x) => [x.flags, x.backendId]), [[['dnat', 'maglev'], LOCAL.id]]);
    });

    test('a missed tail call is a DROPPED/MISSED_TAIL_CALL event, not a silent pass', () => {
      const calls = obj.map(mode === 'tc' ? 'ferry_np_tc_calls_v1' : 'ferry_np_xdp_calls_v1');
      const slot = Buffer.alloc(4); // NP_TAIL_REJECT = 0
      assert.ok(calls.delete(slot));
      const port = sport++;
      const { events: got } = run(packet({ src: CLIENT, dst: VIP, proto: 'tcp', sport: port, dport: 83, flags: 'S' }));
      // The reject decision is reported, then the failed hand-over to the reject program.
      assert.deepEqual(
        got.map((x) => [x.verdict, x.reason, x.srcPort]),
        [
          ['REJECTED', 'NO_BACKEND', port],
          ['DROPPED', 'MISSED_TAIL_CALL', port],
        ],
      );
    });

    test('traffic that is not for a frontend leaves no event', () => {
      const { events: got } = run(packet({ src: CLIENT, dst: '198.19.0.99', proto: 'tcp', sport: sport++, dport: 80 }));
      assert.deepEqual(got, []);
    });
  });
}
