// `ferry explain --from POD --to VIP:PORT`: what the socket load balancer decides for that client
// and frontend right now, computed by the datapath's own code on the live maps (BPF_PROG_RUN of
// bpf/explain.c), step by step: frontend found, then the backend and why, or the refusal/drop and
// what the application sees.
import fs from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { canonicalIp, parseIp } from '../../common/ip.ts';
import { DEFAULT_PIN_DIR } from './agent.ts';
import { requireDatapath, requireNorthSouth } from '../pins.ts';
import type { SocketExplanation } from '../../datapath/explain.ts';
import type { PacketExplanation } from '../../datapath/explain-packet.ts';

const NETNS_DIR = '/run/netns';

/** host:port / [v6]:port → parts. */
function parseTo(value: string): { address: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(value);
  const address = m ? (m[1] ?? m[2])! : '';
  const port = m ? Number(m[3]) : NaN;
  if (!m || !parseIp(address) || port < 1 || port > 65535)
    throw new InvalidArgumentError(`--to: "${value}" is not ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)`);
  return { address: canonicalIp(address)!, port };
}

/** Names of the /run/netns namespaces linked to this one (a pod's veth peer is this node). */
async function peerNamespaces(): Promise<Set<string>> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  try {
    const { stdout } = await promisify(execFile)('ip', ['-j', 'netns', 'list-id'], { timeout: 5000 });
    return new Set(
      (JSON.parse(stdout || '[]') as { name?: string }[]).flatMap((e) => (e.name ? [e.name] : [])),
    );
  } catch {
    return new Set();
  }
}

/** One of several namespaces: the only one attached to this node, else an error naming them all. */
async function pick(from: string, names: readonly string[]): Promise<string> {
  if (names.length === 1) return names[0]!;
  const peers = await peerNamespaces();
  const here = names.filter((n) => peers.has(n));
  if (here.length === 1) return here[0]!;
  throw new InvalidArgumentError(
    `--from: "${from}" matches ${names.join(', ')}: give the full name or the netns path`,
  );
}

/** A client given as a netns path, a /run/netns name, a pod name (a unique name suffix), or an address. */
async function resolveClient(from: string): Promise<{ netns: string; label: string }> {
  if (from.startsWith('/')) {
    if (!fs.existsSync(from))
      throw new InvalidArgumentError(`--from: ${from}: no such network namespace file`);
    return { netns: from, label: from };
  }
  const names = fs.existsSync(NETNS_DIR) ? fs.readdirSync(NETNS_DIR) : [];
  if (names.includes(from)) return { netns: path.join(NETNS_DIR, from), label: from };
  const suffixed = names.filter((n) => n.endsWith(`-${from}`));
  if (suffixed.length) return { netns: path.join(NETNS_DIR, await pick(from, suffixed)), label: from };
  const ip = canonicalIp(from);
  if (ip) {
    const { addressesInNetns } = await import('../../observe/netns.ts');
    const holding: string[] = [];
    for (const n of names) {
      const inside: string[] = await addressesInNetns(path.join(NETNS_DIR, n)).catch((): string[] => []);
      if (inside.includes(ip)) holding.push(n);
    }
    if (holding.length) {
      const n = await pick(from, holding);
      return { netns: path.join(NETNS_DIR, n), label: `${from} (${n})` };
    }
  }
  throw new InvalidArgumentError(
    `--from: "${from}" is not a network namespace under ${NETNS_DIR}, a pod name, or an address held by one`,
  );
}

const WHY: Readonly<Record<string, string>> = {
  NO_BACKEND: 'the Service has no endpoints: connect() fails at once with ECONNREFUSED',
  NO_LOCAL_BACKEND:
    'internalTrafficPolicy Local and no endpoint on this node: connect() fails at once with EHOSTUNREACH',
  BACKEND_MISSING: 'the slot names a backend that is gone (a race with an update): EHOSTUNREACH',
};

/** What `ferry explain` was asked, as commander parsed it. */
interface ExplainOptions {
  readonly to: { address: string; port: number };
  readonly from?: string;
  readonly path: string;
  readonly protocol: string;
  readonly pinDir: string;
  readonly output: string;
}

/** ADDRESS:PORT, IPv6 in brackets. */
function hostPort(address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

export function register(program: Command): void {
  program
    .command('explain')
    .description(
      "what the socket load balancer decides for a client and a frontend, run by the datapath's own code on the live maps",
    )
    .requiredOption(
      '--to <address:port>',
      'the destination, e.g. a ClusterIP and port, or a node address and NodePort',
      parseTo,
    )
    .option(
      '--from <client>',
      'socket path: a pod (network namespace name, or its unique suffix), a netns path, or an address a pod holds; packet path: the client ADDRESS[:PORT]',
    )
    .addOption(
      new Option(
        '--path <path>',
        "socket: a pod's connect() (east-west); packet: a packet arriving at this node (NodePort, LoadBalancer, external IPs)",
      )
        .choices(['socket', 'packet'])
        .default('socket'),
    )
    .addOption(new Option('--protocol <proto>', 'transport').choices(['tcp', 'udp']).default('tcp'))
    .option('--pin-dir <dir>', 'bpffs directory of the node', DEFAULT_PIN_DIR)
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .action((o: ExplainOptions) => (o.path === 'packet' ? explainPacket(o) : explainSocket(o)));
}

/** The socket path: a pod's connect() to the frontend, decided by bpf/explain.c on the live maps. */
async function explainSocket(o: ExplainOptions): Promise<void> {
  requireDatapath(o.pinDir);
  const { SocketExplainer } = await import('../../datapath/explain.ts');
  const { netnsCookie } = await import('../../datapath/netns-cookie.ts');
  const client = o.from ? await resolveClient(o.from) : undefined;
  const cookie = client ? netnsCookie(client.netns) : 0n;
  using explainer = SocketExplainer.open(o.pinDir);
  const protocol = o.protocol.toUpperCase() as 'TCP' | 'UDP';
  const e = explainer.explain({ address: o.to.address, port: o.to.port, protocol, client: cookie });
  const frontend = `${hostPort(o.to.address, o.to.port)}/${protocol}`;
  if (o.output === 'json') console.log(JSON.stringify({ from: client?.label ?? null, frontend, ...e }));
  else printSocketDecision(client?.label, frontend, e);
}

function printSocketDecision(client: string | undefined, frontend: string, e: SocketExplanation): void {
  console.log(`client:   ${client ?? '(none given: no sessionAffinity entry applies)'}`);
  if (!e.found) {
    console.log(`frontend: ${frontend} is not a Service frontend on this node`);
    console.log('decision: NOT TRANSLATED: the socket layer leaves the connection alone');
    return;
  }
  console.log(
    `frontend: ${frontend} found: service id ${e.serviceId}, ${e.kind}, ${e.backendSlots} backend slot(s)${e.affinityTimeoutSeconds ? `, sessionAffinity ClientIP ${e.affinityTimeoutSeconds} s` : ''}`,
  );
  if (e.verdict !== 'TRANSLATED') {
    console.log(`decision: ${e.verdict} (${e.reason}): ${WHY[e.reason ?? ''] ?? ''}`);
    return;
  }
  const b = e.backend!;
  console.log(
    `decision: TRANSLATED to ${hostPort(b.address, b.port)} (backend ${b.id}${b.local ? ', on this node' : ''}${b.terminating ? ', terminating' : ''}), picked by ${e.pickedBy === 'affinity' ? "sessionAffinity: this client's earlier pick, still in the set" : `a random slot of ${e.backendSlots}`}`,
  );
}

/** The client of a packet-path explain: ADDRESS, ADDRESS:PORT or [V6]:PORT (port default 40000). */
function parseClient(value: string | undefined): { address: string; port: number } {
  if (!value)
    throw new InvalidArgumentError('--from: the packet path needs the client address (ADDRESS[:PORT])');
  const bare = canonicalIp(value);
  if (bare) return { address: bare, port: 40000 };
  try {
    return parseTo(value);
  } catch {
    throw new InvalidArgumentError(
      `--from: "${value}" is not ADDRESS or ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)`,
    );
  }
}

const PACKET_WHY: Readonly<Record<string, string>> = {
  NO_BACKEND: 'the Service has no endpoints: answered with a TCP RST / ICMP port unreachable',
  NO_LOCAL_BACKEND: 'externalTrafficPolicy Local and no endpoint on this node: dropped',
  SOURCE_RANGE: 'the client is outside loadBalancerSourceRanges: dropped',
  BACKEND_MISSING: 'the slot names a backend that is gone (a race with an update): dropped',
};

/** The packet path: a packet from the client arriving at this node, decided by bpf/explain_nodeport.c. */
async function explainPacket(o: ExplainOptions): Promise<void> {
  const client = parseClient(o.from);
  requireNorthSouth(o.pinDir);
  const { PacketExplainer } = await import('../../datapath/explain-packet.ts');
  const protocol = o.protocol.toUpperCase() as 'TCP' | 'UDP';
  using explainer = PacketExplainer.open(o.pinDir);
  const e = explainer.explain({
    client: client.address,
    clientPort: client.port,
    address: o.to.address,
    port: o.to.port,
    protocol,
  });
  const frontend = `${hostPort(o.to.address, o.to.port)}/${protocol}`;
  const from = hostPort(client.address, client.port);
  if (o.output === 'json') console.log(JSON.stringify({ from, frontend, ...e }));
  else printPacketDecision(from, frontend, e);
}

function printPacketDecision(from: string, frontend: string, e: PacketExplanation): void {
  console.log(`packet:   ${from} → ${frontend}`);
  if (!e.found) {
    console.log(`frontend: ${frontend} is not a north-south frontend on this node`);
    console.log(
      e.established
        ? `decision: FORWARDED by an existing conntrack entry to ${hostPort(e.established.backend, e.established.port)}`
        : 'decision: PASSED to the kernel untouched',
    );
    return;
  }
  console.log(
    `frontend: found: service id ${e.serviceId}, ${e.kind}${e.wildcard ? ' (on every node address)' : ''}, ${e.backendSlots} backend slot(s)${e.maglev ? ', Maglev' : ''}`,
  );
  if (e.established) {
    const c = e.established;
    console.log(
      `decision: FORWARDED (established flow): conntrack pins it to ${hostPort(c.backend, c.port)} (backend ${c.backendId}${c.local ? ', on this node' : ''}${c.snat ? ', SNAT to the node' : ''}${c.dsr ? ', DSR' : ''})`,
    );
    return;
  }
  if (e.verdict !== 'FORWARDED') {
    console.log(`decision: ${e.verdict} (${e.reason}): ${PACKET_WHY[e.reason ?? ''] ?? ''}`);
    return;
  }
  const b = e.backend!;
  console.log(
    `decision: FORWARDED to ${hostPort(b.address, b.port)} (backend ${b.id}, ${b.local ? 'on this node: DNAT, client address kept' : 'on another node: DNAT + SNAT (or DSR with --nodeport-mode dsr)'}), picked by ${e.pickedBy === 'maglev' ? 'Maglev (the same backend from every node for this flow)' : `a random slot of ${e.backendSlots}`}`,
  );
}
