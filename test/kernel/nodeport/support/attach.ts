// Loads the N-S programs and attaches them to an interface of the network namespace this
// process runs in (start it with nsenter --net=…), pinning the shared maps under --pin. The tc
// filters, the XDP program and the pins outlive this process; removing the namespace removes
// the attachments and the lab removes the pin folder. A stand-in for the agent's attach step
// until the agent attaches the N-S programs itself.
//
//   attach.ts --ifname eth0 --pin DIR --node-addrs A,B --snat4 IP [--snat6 IP] [--xdp off|native|generic]
//             [--forwarding stack|fib-reply|fib]
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BpfObject, ifindexOf } from '../../../../src/datapath/bpf/index.ts';
import { nodeportConstants } from '../../../../src/datapath/nodeport/config.ts';

const { values } = parseArgs({
  options: {
    ifname: { type: 'string', default: 'eth0' },
    pin: { type: 'string' },
    'node-addrs': { type: 'string', default: '' },
    snat4: { type: 'string' },
    snat6: { type: 'string' },
    xdp: { type: 'string', default: 'off' },
    forwarding: { type: 'string', default: 'fib-reply' },
  },
});
if (!values.pin) throw new Error('--pin is required');

const ifindex = ifindexOf(values.ifname);
const constants = nodeportConstants({
  nodeAddresses: values['node-addrs'].split(',').filter(Boolean),
  ...(values.snat4 ? { snatIpv4: values.snat4 } : {}),
  ...(values.snat6 ? { snatIpv6: values.snat6 } : {}),
  forwarding: values.forwarding as 'stack' | 'fib-reply' | 'fib',
});

// Attachments outlive this process: tc filters and the XDP program stay until the namespace goes.
mkdirSync(values.pin, { recursive: true });
const tc = BpfObject.open('build/bpf/nodeport_tc.o', { pinRoot: values.pin });
for (const [name, value] of Object.entries(constants)) tc.setConstant(name, value);
tc.load();
if (values.xdp === 'off') tc.program('ferry_np_ingress').attachTc(ifindex, 'ingress', { replace: true }); // else XDP owns ingress
tc.program('ferry_np_egress').attachTc(ifindex, 'egress', { replace: true });
if (values.xdp !== 'off') {
  const xdp = BpfObject.open('build/bpf/nodeport_xdp.o', { pinRoot: values.pin });
  for (const [name, value] of Object.entries(constants)) xdp.setConstant(name, value);
  xdp.load();
  xdp.program('ferry_np_xdp').attachXdp(ifindex, values.xdp === 'native' ? 'native' : 'generic');
}
process.stdout.write(`${JSON.stringify({ attached: true, ifindex, xdp: values.xdp })}\n`);
