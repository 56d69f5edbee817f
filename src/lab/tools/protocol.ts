// What the lab's echo server says and what the probe prints, in one place so the two tools and
// the tests that read their output cannot drift apart. Node built-ins only: both tools start in
// every pod, so they stay small.
import { isIPv6 } from 'node:net';

/** An IPv4 client of a dual-stack socket shows up as ::ffff:a.b.c.d; report it as plain IPv4. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export function hostPort(address: string, port: number): string {
  const a = plainAddress(address);
  return isIPv6(a) ? `[${a}]:${port}` : `${a}:${port}`;
}

/**
 * The line a server answers with: `pod=<name> client=<ip:port> local=<ip:port>`. UDP replies carry
 * no `local` (a socket bound to [::] cannot tell which address a datagram was sent to).
 */
export function greeting(pod: string, client: string, local?: string): string {
  return `pod=${pod} client=${client}${local === undefined ? '' : ` local=${local}`}\n`;
}

export interface Greeting {
  readonly pod: string;
  readonly client: string | undefined;
  readonly local: string | undefined;
}

export function parseGreeting(text: string): Greeting | undefined {
  const line = text.split('\n', 1)[0]!;
  const fields = new Map<string, string>();
  for (const word of line.trim().split(/\s+/)) {
    const eq = word.indexOf('=');
    if (eq > 0) fields.set(word.slice(0, eq), word.slice(eq + 1));
  }
  const pod = fields.get('pod');
  return pod === undefined ? undefined : { pod, client: fields.get('client'), local: fields.get('local') };
}

export type ProbeProto = 'tcp' | 'udp' | 'http';

/** One line of probe output per attempt. */
export interface ProbeAttempt {
  readonly type: 'attempt';
  readonly target: string;
  readonly proto: ProbeProto;
  readonly seq: number;
  readonly ok: boolean;
  /** The pod name the server answered with. */
  readonly backend?: string;
  /** What getpeername (TCP, connected UDP) or recvmsg (unconnected UDP) said the peer was. */
  readonly peer?: string;
  /** The client address the server saw. */
  readonly seenAs?: string;
  /** The local address the server accepted on. */
  readonly serverLocal?: string;
  /** errno code (ECONNREFUSED, ETIMEDOUT …) when it failed. */
  readonly errno?: string;
  readonly error?: string;
  readonly latencyUs: number;
}

/** The last line per target. */
export interface ProbeSummary {
  readonly type: 'summary';
  readonly target: string;
  readonly proto: ProbeProto;
  readonly attempts: number;
  readonly ok: number;
  readonly failed: number;
  readonly backends: Readonly<Record<string, number>>;
  readonly errors: Readonly<Record<string, number>>;
}

export interface ProbeReport {
  readonly attempts: readonly ProbeAttempt[];
  readonly summaries: readonly ProbeSummary[];
}

export function parseProbeOutput(stdout: string): ProbeReport {
  const attempts: ProbeAttempt[] = [];
  const summaries: ProbeSummary[] = [];
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const record = JSON.parse(line) as ProbeAttempt | ProbeSummary;
    if (record.type === 'attempt') attempts.push(record);
    else if (record.type === 'summary') summaries.push(record);
  }
  return { attempts, summaries };
}
