// Is the node's agent alive, and is its datapath all there? `ferry status` must not take the
// status file's word for it: the file outlives a crashed agent, and its pid may be reused. So
// the pid must be a live `ferry agent` process and the agent's local API socket must answer.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CliError, EXIT, type ExitCode } from './errors.ts';
import { readStatusFile as readStatus, StatusFileError, type StatusFileView } from '../common/status-file.ts';

export type { StatusFileView as StatusFile } from '../common/status-file.ts';

/** The status file (src/common/status-file.ts reads it); a corrupt one is a CLI failure naming file and field. */
export function readStatusFile(file: string): StatusFileView | undefined {
  try {
    return readStatus(file);
  } catch (err) {
    if (err instanceof StatusFileError) throw new CliError(err.message, EXIT.failed);
    throw err;
  }
}

export type ProcessState = 'agent' | 'gone' | 'other';

/**
 * Whether pid is a running `ferry agent`: its command line has the ferry entry point (bin/ferry,
 * or src/cli/main.ts run by node) followed by `agent`. Another process under a reused pid is 'other'.
 */
export function processState(pid: number, procRoot = '/proc'): ProcessState {
  let cmdline: string;
  try {
    cmdline = fs.readFileSync(path.join(procRoot, String(pid), 'cmdline'), 'utf8');
  } catch {
    return 'gone';
  }
  const argv = cmdline.split('\0').filter(Boolean);
  const entry = argv.findIndex((a) => /(^|\/)(ferry|main\.ts)$/.test(a));
  return entry >= 0 && argv.slice(entry + 1).includes('agent') ? 'agent' : 'other';
}

export type SocketState = 'answers' | 'absent' | 'refused' | 'silent';

/** Sends the API's `status` request and waits (at most timeoutMs) for any reply line. */
export function probeApiSocket(socketPath: string, timeoutMs = 2000): Promise<SocketState> {
  if (!fs.existsSync(socketPath)) return Promise.resolve('absent');
  return new Promise((resolve) => {
    const socket = net.createConnection(socketPath);
    const done = (state: SocketState): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(state);
    };
    const timer = setTimeout(() => done('silent'), timeoutMs);
    socket.once('connect', () => socket.write('{"op":"status"}\n'));
    socket.on('data', (chunk: Buffer) => {
      if (chunk.includes(0x0a)) done('answers');
    });
    socket.once('error', (e: NodeJS.ErrnoException) => done(e.code === 'ENOENT' ? 'absent' : 'refused'));
    socket.once('close', () => done('refused'));
  });
}

export interface HealthInput {
  readonly statusFile: string;
  readonly status: StatusFileView | undefined;
  readonly processState: ProcessState | undefined;
  readonly socketPath: string;
  /** Probed whenever there is a status file. */
  readonly socket: SocketState | undefined;
  /** Whether the agent said where its socket is: then a missing socket is a fault, not "observation off". */
  readonly socketNamed: boolean;
  readonly programsAttached: number;
  readonly programsExpected: number;
  readonly pinDir: string;
}

export interface Health {
  readonly exitCode: ExitCode;
  /** What is wrong and what to do, worst first; empty when healthy. */
  readonly problems: readonly string[];
  /** Facts worth a line that do not make status fail. */
  readonly notes: readonly string[];
}

/** The verdict of `ferry status`, from what was observed. Pure. */
export function assessHealth(h: HealthInput): Health {
  const down: string[] = [];
  const degraded: string[] = [];
  const notes: string[] = [];
  const start = 'start the agent (ferry agent, or its DaemonSet) and check its log';
  if (!h.status) down.push(`agent not running: no status file ${h.statusFile}; ${start}, or pass its --run-dir`);
  // Only a live agent serves its socket (a successor would have rewritten the file): a pid that
  // is not visible here means another pid namespace (status run on the host, the agent in a pod).
  else if (h.processState !== 'agent' && h.socket === 'answers')
    notes.push(`pid ${h.status.pid} is not a ferry agent in this pid namespace, but ${h.socketPath} answers: liveness checked by the socket only`);
  else if (h.processState === 'gone') down.push(`agent not running: pid ${h.status.pid} from ${h.statusFile} is gone, so the file is stale; ${start}`);
  else if (h.processState === 'other') down.push(`agent not running: pid ${h.status.pid} from ${h.statusFile} is another process, so the file is stale; ${start}`);
  else if (h.socket === 'refused' || h.socket === 'silent')
    down.push(`agent pid ${h.status.pid} does not answer on ${h.socketPath} (${h.socket === 'refused' ? 'connection refused' : 'no reply'}): it is hung or exiting; restart it`);
  else if (h.socket === 'absent') {
    if (h.socketNamed) down.push(`agent pid ${h.status.pid} has no API socket ${h.socketPath}: restart it`);
    else notes.push(`no API socket ${h.socketPath} (flow observation off?): liveness checked by pid only`);
  }
  if (h.programsAttached === 0) down.push(`datapath not installed: 0/${h.programsExpected} programs attached in ${h.pinDir} (the agent installs it; is this its --pin-dir?)`);
  else if (h.programsAttached < h.programsExpected)
    degraded.push(`datapath incomplete: ${h.programsAttached}/${h.programsExpected} programs attached in ${h.pinDir}; restart the agent to reattach them`);
  if (down.length === 0 && h.status && !h.status.agent.ready)
    degraded.push(`agent pid ${h.status.pid} is not ready: its first sync has not reached the maps (see the Syncs line and its log)`);
  const exitCode = down.length ? EXIT.notRunning : degraded.length ? EXIT.degraded : EXIT.ok;
  return { exitCode, problems: [...down, ...degraded], notes };
}
