// Direct server return, packet by packet on the real tc programs (BPF_PROG_RUN): the ingress node
// DNATs a flow to a remote backend, keeps the client's address and adds the DSR option naming the
// frontend; the backend's node strips the option and remembers the frontend, so the backend's reply
// leaves that node already translated back — it never returns through the ingress node.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { nodeportConstants } from '../../../src/datapath/nodeport/config.ts';
import { MAP_CT, MAP_NAT, MAP_STATS, NP_STAT_NAMES, sumPerCpu, type NpStat } from '../../../src/datapath/nodeport/maps.ts';
import { openObject, removePins, type LoadedObject } from './support/loader.ts';
import { packet, parse } from './support/packet.ts';
import { writeService } from './support/services.ts';

const NODE1 = '172.30.0.1';
const NODE1_6 = 'fd00:172:30::1';
const NODE2 = '172.30.0.2';
const CLIENT = '198.18.0.10';
const CLIENT6 = 'fd00:198:18::10';
const REMOTE = { id: 2, address: '10.244.2.5', port: 8080 };
const REMOTE6 = { id: 12, address: 'fd00:10:244:2::5', port: 8080 };
const TC_OK = 0;

function node(address: string, extra: readonly string[], mode: 'snat' | 'dsr', file = 'nodeport_tc'): { obj: LoadedObject; pinRoot: string } {
  const pinRoot = `/sys/fs/bpf/ferry-np-dsr-${randomBytes(4).toString('hex')}`;
  const obj = openObject(`build/bpf/${file}.o`, {
    pinRoot,
    constants: nodeportConstants({ nodeAddresses: [address, ...extra], forwarding: 'stack', mode }),
  });
  return { obj, pinRoot };
}

function stat(obj: LoadedObject, name: NpStat): bigint {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(NP_STAT_NAMES.indexOf(name));
  return sumPerCpu(obj.map(MAP_STATS).lookup(k) ?? Buffer.alloc(8));
}

describe('nodeport DSR (IPv4 option dispatch)', () => {
  let ingress: { obj: LoadedObject; pinRoot: string };
  let backendNode: { obj: LoadedObject; pinRoot: string };
  let xdp: { obj: LoadedObject; pinRoot: string };
  let sport = 42000;

  before(() => {
    ingress = node(NODE1, [NODE1_6], 'dsr');
    backendNode = node(NODE2, [], 'dsr');
    xdp = node(NODE1, [], 'dsr', 'nodeport_xdp');
    for (const n of [ingress, xdp]) {
      const services = n.obj.map('ferry_services_v1');
      const backends = n.obj.map('ferry_backends_v1');
      writeService(services, backends, { id: 1, address: '0.0.0.0', port: 30080, backends: [REMOTE] });
      writeService(services, backends, { id: 2, address: '::', port: 30080, backends: [REMOTE6] });
    }
  });
  after(() => {
    for (const n of [ingress, backendNode, xdp]) {
      n?.obj[Symbol.dispose]();
      if (n) removePins(n.pinRoot);
    }
  });

  test('ingress node: DNAT, client address kept, option = frontend; backend node: option stripped; reply leaves translated', () => {
    const port = sport++;
    const syn = ingress.obj.run('ferry_np_ingress', packet({ src: CLIENT, dst: NODE1, proto: 'tcp', sport: port, dport: 30080, flags: 'S' }));
    assert.equal(syn.retval, TC_OK);
    const ip = syn.dataOut.subarray(14);
    const out = parse(syn.dataOut);
    assert.deepEqual([out.src, out.sport, out.dst, out.dport, out.checksumsOk], [CLIENT, port, REMOTE.address, 8080, true]);
    assert.equal(ip[0]! & 15, 7, 'IPv4 header grew by the 8-byte option');
    assert.deepEqual([...ip.subarray(20, 24)], [0x9e, 8, 30080 >> 8, 30080 & 0xff]);
    assert.equal([...ip.subarray(24, 28)].join('.'), NODE1, 'the option names the frontend the client used');
    assert.equal(ingress.obj.map(MAP_NAT).keys().length, 0, 'no reply state on the ingress node: replies never come back');
    assert.equal(stat(ingress.obj, 'dsr'), 1n);
    assert.equal(stat(ingress.obj, 'snat'), 0n);

    // The backend's node receives it: option gone, nothing else changed, the frontend remembered.
    const arrived = backendNode.obj.run('ferry_np_ingress', syn.dataOut);
    assert.equal(arrived.retval, TC_OK);
    const inner = parse(arrived.dataOut);
    assert.equal(arrived.dataOut[14]! & 15, 5);
    assert.deepEqual([inner.src, inner.sport, inner.dst, inner.dport, inner.flags, inner.checksumsOk], [CLIENT, port, REMOTE.address, 8080, 'S', true]);
    assert.equal(arrived.dataOut.length, syn.dataOut.length - 8);
    assert.equal(stat(backendNode.obj, 'dsr_backend'), 1n);

    // The backend answers the client; on the way out of its node the reply becomes frontend → client.
    const reply = backendNode.obj.run('ferry_np_egress', packet({ src: REMOTE.address, dst: CLIENT, proto: 'tcp', sport: 8080, dport: port, flags: 'SA' }));
    const back = parse(reply.dataOut);
    assert.deepEqual([back.src, back.sport, back.dst, back.dport, back.flags, back.checksumsOk], [NODE1, 30080, CLIENT, port, 'SA', true]);

    // Later packets of the flow: conntrack on the ingress node keeps the backend and the option.
    const ack = parse(ingress.obj.run('ferry_np_ingress', packet({ src: CLIENT, dst: NODE1, proto: 'tcp', sport: port, dport: 30080, flags: 'A' })).dataOut);
    assert.deepEqual([ack.dst, ack.dport, ack.checksumsOk], [REMOTE.address, 8080, true]);
    assert.equal(stat(ingress.obj, 'dsr'), 2n);
  });

  test('UDP with a payload: checksums stay valid through push and pop', () => {
    const port = sport++;
    const p = packet({ src: CLIENT, dst: NODE1, proto: 'udp', sport: port, dport: 30080, payload: Buffer.from('ferry dsr') });
    const svc = ingress.obj.map('ferry_services_v1');
    writeService(svc, ingress.obj.map('ferry_backends_v1'), { id: 3, address: '0.0.0.0', port: 30080, protocol: 'UDP', backends: [REMOTE] });
    const pushed = ingress.obj.run('ferry_np_ingress', p).dataOut;
    assert.ok(parse(pushed).checksumsOk);
    const popped = parse(backendNode.obj.run('ferry_np_ingress', pushed).dataOut);
    assert.deepEqual([popped.dst, popped.dport, popped.checksumsOk, popped.length], [REMOTE.address, 8080, true, p.length - 14]);
  });

  test('IPv6 flows keep SNAT in DSR mode', () => {
    const out = parse(ingress.obj.run('ferry_np_ingress', packet({ src: CLIENT6, dst: NODE1_6, proto: 'tcp', sport: sport++, dport: 30080, flags: 'S' })).dataOut);
    assert.deepEqual([out.src, out.dst], [NODE1_6, REMOTE6.address]);
  });

  test('XDP leaves DSR flows to tc: the packet passes unchanged and no state is created', () => {
    const p = packet({ src: CLIENT, dst: NODE1, proto: 'tcp', sport: sport++, dport: 30080, flags: 'S' });
    const r = xdp.obj.run('ferry_np_xdp', p);
    assert.deepEqual([r.retval, r.dataOut], [2 /* XDP_PASS */, p]);
    assert.equal(xdp.obj.map(MAP_CT).keys().length, 0);
  });
});
