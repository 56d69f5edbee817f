// Running programs "on" a lab host: in its network namespace (nsenter, which keeps /sys/fs/bpf
// visible, unlike ip netns exec) and inside its cgroup, joined before exec so the program's very
// first socket is already under the node's cgroup BPF programs.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { FerryError } from '../common/errors.ts';
import type { LabHost } from './types.ts';

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ExecOptions {
  readonly input?: string;
  /** Kill the command (SIGKILL) after this long; the result then has signal SIGKILL. */
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

/** cgroup a host's processes join: pods use their node's; the fabric has none. */
function cgroupOf(host: LabHost): string | undefined {
  return host.kind === 'fabric' ? undefined : host.cgroup;
}

/** argv that enters `host` and then execs `argv` (the shell only sees fixed text; argv goes as "$@"). */
export function enterArgv(host: LabHost, argv: readonly string[]): string[] {
  if (argv.length === 0) throw new FerryError('FERRY_E_LAB', `exec on ${host.name}: empty command`);
  const cgroup = cgroupOf(host);
  const net = `--net=${host.netnsPath}`;
  if (cgroup === undefined) return [net, '--', ...argv];
  return [
    net,
    '--',
    'sh',
    '-c',
    'echo $$ > "$1" && shift && exec "$@"',
    'ferry-lab',
    `${cgroup}/cgroup.procs`,
    ...argv,
  ];
}

/** Runs a command on a lab host to completion; never throws for a non-zero exit. */
export function execIn(
  host: LabHost,
  argv: readonly string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', enterArgv(host, argv), {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new FerryError('FERRY_E_LAB', `exec on ${host.name}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        code,
        signal,
      });
    });
    child.stdin.on('error', () => undefined); // the command may exit without reading its input
    child.stdin.end(options.input ?? '');
  });
}

/** A long-running process on a lab host. Disposing it kills it (the lab's teardown does too). */
export class LabProcess implements AsyncDisposable {
  readonly host: LabHost;
  readonly argv: readonly string[];
  readonly #child: ChildProcess;
  readonly #exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #lines: string[] = [];
  readonly #lineListeners = new Set<(line: string) => void>();
  #stderr = '';

  constructor(host: LabHost, argv: readonly string[], env?: NodeJS.ProcessEnv) {
    this.host = host;
    this.argv = argv;
    this.#child = spawn('nsenter', enterArgv(host, argv), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: env ?? process.env,
    });
    this.#exited = new Promise((resolve) => {
      this.#child.on('error', (error) => {
        this.#stderr += String(error);
        resolve({ code: null, signal: null });
      });
      this.#child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    // stdout is always drained (a full pipe would stall the program); the last lines are kept.
    createInterface({ input: this.#child.stdout! }).on('line', (line) => {
      this.#lines.push(line);
      if (this.#lines.length > 1000) this.#lines.shift();
      for (const listener of this.#lineListeners) listener(line);
    });
    this.#child.stderr!.setEncoding('utf8');
    this.#child.stderr!.on('data', (s: string) => {
      this.#stderr = (this.#stderr + s).slice(-8192);
    });
  }

  /** The pid of the program itself (nsenter and sh exec into it). */
  get pid(): number {
    return this.#child.pid ?? -1;
  }

  /** The last (up to 1000) lines the program printed. */
  get lines(): readonly string[] {
    return [...this.#lines];
  }

  get stderrTail(): string {
    return this.#stderr;
  }

  /** Resolves with the first stdout line (already printed or to come) that satisfies `match`. */
  async waitForLine(match: (line: string) => boolean, timeoutMs = 10_000): Promise<string> {
    const seen = this.#lines.find(match);
    if (seen !== undefined) return seen;
    let listener: ((line: string) => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await new Promise<string>((resolve, reject) => {
        listener = (line): void => {
          if (match(line)) resolve(line);
        };
        this.#lineListeners.add(listener);
        timer = setTimeout(
          () =>
            reject(
              new FerryError(
                'FERRY_E_LAB',
                `${this.#describe()}: no matching output within ${timeoutMs} ms; stderr: ${this.#stderr.trim()}`,
              ),
            ),
          timeoutMs,
        );
        void this.#exited.then(({ code, signal }) =>
          // Let the last lines arrive before deciding the process died unready.
          setImmediate(() =>
            reject(
              new FerryError(
                'FERRY_E_LAB',
                `${this.#describe()}: exited (${signal ?? code}) before printing the expected line; stderr: ${this.#stderr.trim()}`,
              ),
            ),
          ),
        );
      });
    } finally {
      clearTimeout(timer);
      if (listener) this.#lineListeners.delete(listener);
    }
  }

  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.#exited;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill(signal);
    await this.#exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }

  #describe(): string {
    return `${this.argv.join(' ').slice(0, 120)} on ${this.host.name}`;
  }
}
