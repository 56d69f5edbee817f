// How the lab starts its tools (tools/echo-server.ts, tools/probe.ts) on a host: the argv of each,
// the environment they run with, and how long a probe run may take before it counts as hung.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostPort, type ProbeProto } from './tools/protocol.ts';

/** Ports the echo server listens on unless told otherwise. */
export const ECHO_PORTS = { tcp: 7000, udp: 7000, http: 8080 } as const;

export interface EchoServerOptions {
  readonly tcp?: readonly number[];
  readonly udp?: readonly number[];
  readonly http?: readonly number[];
}

export interface ProbeOptions {
  readonly proto?: ProbeProto;
  readonly count?: number;
  /** Per attempt. Default 2000 ms. */
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  readonly udpMode?: 'connected' | 'unconnected';
  readonly payload?: string;
}

const TOOLS = {
  echoServer: fileURLToPath(new URL('./tools/echo-server.ts', import.meta.url)),
  probe: fileURLToPath(new URL('./tools/probe.ts', import.meta.url)),
};
/** The Node running us also runs the tools (type stripping, no build step). */
const NODE_ARGV = [process.execPath, '--disable-warning=ExperimentalWarning'];
/**
 * Node's on-disk compile cache cuts a tool's start from ~160 ms to ~60 ms; every lab test starts
 * dozens of them.
 */
export const TOOL_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  NODE_COMPILE_CACHE: join(tmpdir(), 'ferry-lab-node-cache'),
};

/** `host:port` as the probe wants it (brackets for IPv6). */
export function target(address: string, port: number): string {
  return hostPort(address, port);
}

/** The echo server's argv: it answers with `name`, on the given ports or ECHO_PORTS. */
export function echoServerArgv(name: string, options: EchoServerOptions): string[] {
  const argv = [...NODE_ARGV, TOOLS.echoServer, '--name', name];
  const tcp = options.tcp ?? [ECHO_PORTS.tcp];
  const udp = options.udp ?? [ECHO_PORTS.udp];
  const http = options.http ?? [ECHO_PORTS.http];
  if (tcp.length) argv.push('--tcp', tcp.join(','));
  if (udp.length) argv.push('--udp', udp.join(','));
  if (http.length) argv.push('--http', http.join(','));
  return argv;
}

/** The probe's argv against `targets`, and the time budget past which the run counts as hung. */
export function probeArgv(
  targets: readonly string[],
  options: ProbeOptions,
): { readonly argv: string[]; readonly budget: number } {
  const count = options.count ?? 1;
  const timeoutMs = options.timeoutMs ?? 2000;
  const argv = [
    ...NODE_ARGV,
    TOOLS.probe,
    '--proto',
    options.proto ?? 'tcp',
    '--count',
    String(count),
    '--timeout',
    String(timeoutMs),
  ];
  if (options.intervalMs !== undefined) argv.push('--interval', String(options.intervalMs));
  if (options.udpMode !== undefined) argv.push('--udp-mode', options.udpMode);
  if (options.payload !== undefined) argv.push('--payload', options.payload);
  argv.push(...targets);
  const budget = targets.length * count * (timeoutMs + (options.intervalMs ?? 0)) + 15_000;
  return { argv, budget };
}
