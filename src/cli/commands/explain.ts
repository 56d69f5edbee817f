// `ferry explain --from POD --to VIP:PORT`: what the socket load balancer decides for that client
// and frontend right now, computed by the datapath's own code on the live maps (BPF_PROG_RUN of
// bpf/explain.c), step by step: frontend found, then the backend and why, or the refusal/drop and
// what the application sees.
import fs from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { canonicalIp, parseIp } from '../../common/ip.ts';
import { DEFAULT_PIN_DIR } from './agent.ts';

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

/** A client given as a netns path, a /run/netns name, a pod name (a unique name suffix), or an address. */
async function resolveClient(from: string): Promise<{ netns: string; label: string }> {
  if (from.startsWith('/')) {
    if (!fs.existsSync(from)) throw new InvalidArgumentError(`--from: ${from}: no such network namespace file`);
    return { netns: from, label: from };
  }
  const names = fs.existsSync(NETNS_DIR) ? fs.readdirSync(NETNS_DIR) : [];
  if (names.includes(from)) return { netns: path.join(NETNS_DIR, from), label: from };
  const suffixed = names.filter((n) => n.endsWith(`-${from}`));
  if (suffixed.length === 1) return { netns: path.join(NETNS_DIR, suffixed[0]!), label: from };
  if (suffixed.length > 1) throw new InvalidArgumentError(`--from: "${from}" matches ${suffixed.join(', ')}: give the full name`);
  const ip = canonicalIp(from);
  if (ip) {
    const { addressesInNetns } = await import('../../observe/netns.ts');
    for (const n of names) {
      const inside: string[] = await addressesInNetns(path.join(NETNS_DIR, n)).catch((): string[] => []);
      if (inside.includes(ip)) return { netns: path.join(NETNS_DIR, n), label: `${from} (${n})` };
    }
  }
  throw new InvalidArgumentError(`--from: "${from}" is not a network namespace under ${NETNS_DIR}, a pod name, or an address held by one`);
}

const WHY: Readonly<Record<string, string>> = {
  NO_BACKEND: 'the Service has no endpoints: connect() fails at once with ECONNREFUSED',
  NO_LOCAL_BACKEND: 'internalTrafficPolicy Local and no endpoint on this node: connect() fails at once with EHOSTUNREACH',
  BACKEND_MISSING: 'the slot names a backend that is gone (a race with an update): EHOSTUNREACH',
};

export function register(program: Command): void {
  program
    .command('explain')
    .description("what the socket load balancer decides for a client and a frontend, run by the datapath's own code on the live maps")
    .requiredOption('--to <address:port>', 'the destination, e.g. a ClusterIP and port', parseTo)
    .option('--from <pod|netns|address>', 'the client: a pod (network namespace name, or its unique suffix), a netns path, or an address a pod holds')
    .addOption(new Option('--protocol <proto>', 'transport').choices(['tcp', 'udp']).default('tcp'))
    .option('--pin-dir <dir>', 'bpffs directory of the node', DEFAULT_PIN_DIR)
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (o: { to: { address: string; port: number }; from?: string; protocol: string; pinDir: string; output: string }) => {
      const { SocketExplainer } = await import('../../datapath/explain.ts');
      const { netnsCookie } = await import('../../datapath/netns-cookie.ts');
      const client = o.from ? await resolveClient(o.from) : undefined;
      const cookie = client ? netnsCookie(client.netns) : 0n;
      using explainer = SocketExplainer.open(o.pinDir);
      const protocol = o.protocol.toUpperCase() as 'TCP' | 'UDP';
      const e = explainer.explain({ address: o.to.address, port: o.to.port, protocol, client: cookie });
      const frontend = `${o.to.address.includes(':') ? `[${o.to.address}]` : o.to.address}:${o.to.port}/${protocol}`;
      if (o.output === 'json') {
        console.log(JSON.stringify({ from: client?.label ?? null, frontend, ...e }));
        return;
      }
      console.log(`client:   ${client?.label ?? '(none given: no sessionAffinity entry applies)'}`);
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
      const where = `${b.address.includes(':') ? `[${b.address}]` : b.address}:${b.port}`;
      console.log(
        `decision: TRANSLATED to ${where} (backend ${b.id}${b.local ? ', on this node' : ''}${b.terminating ? ', terminating' : ''}), picked by ${e.pickedBy === 'affinity' ? "sessionAffinity: this client's earlier pick, still in the set" : `a random slot of ${e.backendSlots}`}`,
      );
    });
}
