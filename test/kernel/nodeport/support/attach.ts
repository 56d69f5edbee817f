// Loads the N-S programs and attaches them to an interface of the network namespace this
// process runs in (start it with nsenter --net=…), pinning the shared maps under --pin. The tc
// filters, the XDP program and the pins outlive this process; removing the namespace removes
// the attachments and the lab removes the pin folder. A stand-in for the agent's attach step
// while the binding and agent are not in the tree.
//
//   attach.ts --ifname eth0 --pin DIR --node-addrs A,B --snat4 IP [--snat6 IP] [--xdp off|native|generic]
//             [--forwarding stack|fib-reply|fib]
import { parseArgs } from 'node:util';
import koffi from 'koffi';
import { openObject } from './loader.ts';
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

const lib = koffi.load('libbpf.so.1');
const libc = koffi.load('libc.so.6');
const ifNameToIndex = libc.func('unsigned int if_nametoindex(const char *name)');
koffi.struct('ferry_np_tc_hook', { sz: 'size_t', ifindex: 'int', attach_point: 'int', parent: 'uint32_t' });
koffi.struct('ferry_np_tc_opts', {
  sz: 'size_t',
  prog_fd: 'int',
  flags: 'uint32_t',
  prog_id: 'uint32_t',
  handle: 'uint32_t',
  priority: 'uint32_t',
});
const hookCreate = lib.func('int bpf_tc_hook_create(ferry_np_tc_hook *hook)');
const tcAttach = lib.func('int bpf_tc_attach(ferry_np_tc_hook *hook, _Inout_ ferry_np_tc_opts *opts)');
const xdpAttach = lib.func('int bpf_xdp_attach(int ifindex, int prog_fd, uint32_t flags, void *opts)');

const ifindex = ifNameToIndex(values.ifname) as number;
if (!ifindex) throw new Error(`no interface ${values.ifname}`);
const constants = nodeportConstants({
  nodeAddresses: values['node-addrs'].split(',').filter(Boolean),
  ...(values.snat4 ? { snatIpv4: values.snat4 } : {}),
  ...(values.snat6 ? { snatIpv6: values.snat6 } : {}),
  forwarding: values.forwarding as 'stack' | 'fib-reply' | 'fib',
});

const tc = openObject('build/bpf/nodeport_tc.o', { pinRoot: values.pin, constants });
for (const [point, prog] of [
  [1, 'ferry_np_ingress'],
  [2, 'ferry_np_egress'],
] as const) {
  if (point === 1 && values.xdp !== 'off') continue; // XDP owns ingress
  const hook = { sz: 24, ifindex, attach_point: point, parent: 0 };
  const rc = hookCreate(hook) as number;
  if (rc !== 0 && rc !== -17) throw new Error(`bpf_tc_hook_create: ${rc}`);
  // flags 1 = BPF_TC_F_REPLACE: re-running the tool swaps the programs in place.
  const opts = { sz: 32, prog_fd: tc.programFd(prog), flags: 1, prog_id: 0, handle: 1, priority: 1 };
  const arc = tcAttach(hook, opts) as number;
  if (arc !== 0) throw new Error(`bpf_tc_attach ${prog}: ${arc}`);
}
if (values.xdp !== 'off') {
  const xdp = openObject('build/bpf/nodeport_xdp.o', { pinRoot: values.pin, constants });
  const flags = values.xdp === 'native' ? 4 : 2;
  const rc = xdpAttach(ifindex, xdp.programFd('ferry_np_xdp'), flags, null) as number;
  if (rc !== 0) throw new Error(`bpf_xdp_attach: ${rc}`);
}
process.stdout.write(`${JSON.stringify({ attached: true, ifindex, xdp: values.xdp })}\n`);
