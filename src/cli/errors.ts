// How the `ferry` command fails: every error becomes one line on stderr that names what failed
// and what to do, and an exit code a script can branch on. Stacks are for --debug only.
import { CommanderError } from 'commander';
import { BpfError, FerryError } from '../common/errors.ts';

/** The CLI's exit codes (documented in the README, "CLI errors and exit codes"). */
export const EXIT = {
  ok: 0,
  /** An operation failed (a BPF call, a file, a lab step, an internal error). */
  failed: 1,
  /** Bad command line: unknown command or flag, a flag value that does not parse. */
  usage: 2,
  /** The agent is not running here, or the datapath is not installed (nothing pinned, no socket). */
  notRunning: 3,
  /** The agent runs but the datapath is not fully there or the agent is not ready. */
  degraded: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI raises itself, already worded for the operator, with its exit code. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

export interface Failure {
  readonly line: string;
  readonly exitCode: ExitCode;
}

const ROOT_HINT = 'run as root (Ferry needs CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN)';
const PIN_HINT = 'is the agent running, and is this its --pin-dir?';

function isErrno(err: unknown): err is NodeJS.ErrnoException & { readonly code: string } {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && 'syscall' in err;
}

/** The first line only: a verifier log or a cause chain belongs to --debug. */
function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}

function describeErrno(err: NodeJS.ErrnoException & { readonly code: string }): Failure {
  const address = (err as { readonly address?: unknown }).address;
  const what = `${err.syscall ?? 'system call'}${err.path ? ` ${err.path}` : ''}${typeof address === 'string' ? ` ${address}` : ''}`;
  switch (err.code) {
    case 'ENOENT':
      return { line: `${what}: no such file or directory`, exitCode: EXIT.failed };
    case 'EACCES':
    case 'EPERM':
      return { line: `${what}: permission denied: ${ROOT_HINT}`, exitCode: EXIT.failed };
    case 'ECONNREFUSED':
      return { line: `${what}: nothing listening: is the agent running, and is this its --run-dir?`, exitCode: EXIT.notRunning };
    default:
      return { line: `${what}: ${err.code}: ${firstLine(err.message)}`, exitCode: EXIT.failed };
  }
}

/** The one line and exit code for any error that reaches the top of the CLI. */
export function describeFailure(err: unknown): Failure {
  if (err instanceof CliError) return { line: firstLine(err.message), exitCode: err.exitCode };
  if (err instanceof CommanderError)
    return { line: `${firstLine(err.message).replace(/^error: /, '')} (see --help)`, exitCode: EXIT.usage };
  if (err instanceof BpfError) {
    const line = firstLine(err.message);
    if (err.errnoName === 'ENOENT') return { line: `${line}: not pinned: ${PIN_HINT}`, exitCode: EXIT.notRunning };
    if (err.errnoName === 'EPERM' || err.errnoName === 'EACCES') return { line: `${line}: ${ROOT_HINT}`, exitCode: EXIT.failed };
    return { line: err.verifierLog ? `${line} (the verifier log is printed with --debug)` : line, exitCode: EXIT.failed };
  }
  if (err instanceof FerryError) {
    const usage = err.code === 'FERRY_E_INVALID_ARGUMENT' || err.code === 'FERRY_E_INVALID_OBJECT';
    return { line: firstLine(err.message), exitCode: usage ? EXIT.usage : EXIT.failed };
  }
  if (isErrno(err)) return describeErrno(err);
  const message = err instanceof Error ? firstLine(err.message) || err.name : String(err);
  return { line: `internal error: ${message} (run with --debug for the stack)`, exitCode: EXIT.failed };
}

/** The stack and the cause chain, for --debug. */
export function debugDetail(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && depth < 8; depth++) {
    parts.push(e instanceof Error ? (e.stack ?? String(e)) : String(e));
    if (e instanceof BpfError && e.verifierLog) parts.push(`verifier log:\n${e.verifierLog}`);
    e = e instanceof Error ? e.cause : undefined;
    if (e !== undefined) parts.push('caused by:');
  }
  return parts.join('\n');
}

/** Whether stacks are wanted: `--debug` anywhere before a `--`, or FERRY_DEBUG=1. */
export function debugRequested(argv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  const end = argv.indexOf('--');
  const own = end < 0 ? argv : argv.slice(0, end);
  return own.includes('--debug') || env.FERRY_DEBUG === '1';
}

/** argv without the `--debug` flags (before any `--`), so every subcommand accepts it. */
export function withoutDebug(argv: readonly string[]): string[] {
  const end = argv.indexOf('--');
  const own = end < 0 ? argv : argv.slice(0, end);
  const rest = end < 0 ? [] : argv.slice(end);
  return [...own.filter((a) => a !== '--debug'), ...rest];
}
