// Running external tools (ip, nsenter, sysctl) without a shell: every argument
// goes to execFile as its own argv entry, so a name can never be read as a command.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { FerryError } from './errors.ts';

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  /** Exit code; null when a signal ended the process. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RunOptions {
  /** Written to the process's stdin, which is then closed. */
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  readonly allowFailure?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

/** Runs `file args…`; throws a FERRY_E_LAB error naming the command and its stderr on failure. */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 0, env: options.env },
      (error, stdout, stderr) => {
        const code = child.exitCode;
        const result: RunResult = { stdout, stderr, code, signal: child.signalCode };
        if (error && code === null && child.signalCode === null) {
          // The process never ran (ENOENT, EACCES …).
          reject(new FerryError('FERRY_E_EXEC', `${file}: cannot run: ${error.message}`, { cause: error }));
        } else if (error && !options.allowFailure) {
          const why = child.signalCode ? `killed by ${child.signalCode}` : `exit ${code}`;
          reject(
            new FerryError('FERRY_E_EXEC', `${[file, ...args].join(' ')}: ${why}: ${stderr.trim()}`, {
              cause: error,
            }),
          );
        } else {
          resolve(result);
        }
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

const SAFE_TOKEN = /^[A-Za-z0-9_.:/@%+=,-]+$/;

export interface BatchTarget {
  /** Network namespace by name (/run/netns/NAME). */
  readonly netns?: string;
  /** Network namespace by path (/run/netns/NAME, /proc/PID/ns/net). */
  readonly netnsPath?: string;
  /** net.* sysctls to set in the same namespace before the batch (e.g. for links it brings up). */
  readonly sysctlsBefore?: Readonly<Record<string, string | number>>;
  /** net.* sysctls to set once the batch succeeded (e.g. for links it created). */
  readonly sysctlsAfter?: Readonly<Record<string, string | number>>;
}

/**
 * Runs `ip -batch -` with one command per line, in the network namespace named by `where` (or in
 * the caller's own when it names none), with sysctls set there before or after it. Batch and sysctls share
 * one process tree: forking a large Node process costs more than the commands themselves. The
 * batch parser splits on blanks, so every token is checked to be a plain word first; sysctls go
 * to the shell as positional arguments, never as script text.
 */
export async function ipBatch(
  commands: readonly (readonly string[])[],
  where: BatchTarget = {},
): Promise<void> {
  for (const command of commands) {
    for (const token of command) {
      if (!SAFE_TOKEN.test(token))
        throw new FerryError('FERRY_E_EXEC', `ip batch: unsafe token ${JSON.stringify(token)}`);
    }
  }
  const before = sysctlPairs(where.sysctlsBefore ?? {});
  const after = sysctlPairs(where.sysctlsAfter ?? {});
  if (before.length > 0 && after.length > 0) {
    throw new FerryError('FERRY_E_EXEC', 'ip batch: sysctls before and after in one call are not supported');
  }
  if (commands.length === 0 && before.length + after.length === 0) return;
  const input = commands.map((c) => c.join(' ')).join('\n') + '\n';
  const path = where.netnsPath ?? (where.netns === undefined ? undefined : `${NETNS_RUN_DIR}/${where.netns}`);
  const enter = path === undefined ? [] : ['nsenter', `--net=${path}`, '--'];
  let argv = [...enter, 'ip', '-batch', '-'];
  if (enter.length === 0 && after.length > 0) {
    // In our own namespace the sysctls are plain files: no shell and no sysctl process (a CNI ADD
    // pays for every process it starts).
    await run('ip', ['-batch', '-'], { input });
    await writeSysctls(after);
    return;
  }
  if (before.length > 0) {
    argv = [...enter, 'sh', '-c', 'sysctl -q -w "$@" && exec ip -batch -', 'ferry-ip-batch', ...before];
  } else if (after.length > 0) {
    argv = [...enter, 'sh', '-c', 'ip -batch - && exec sysctl -q -w "$@"', 'ferry-ip-batch', ...after];
  }
  await run(argv[0]!, argv.slice(1), { input });
}

const NETNS_RUN_DIR = '/run/netns';

/** Writes `key=value` pairs through /proc/sys of the calling process's network namespace. */
async function writeSysctls(pairs: readonly string[]): Promise<void> {
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq);
    const file = `/proc/sys/${key.includes('/') ? key : key.replaceAll('.', '/')}`;
    try {
      await writeFile(file, pair.slice(eq + 1));
    } catch (error) {
      throw new FerryError('FERRY_E_EXEC', `sysctl ${key}: ${(error as Error).message}`, { cause: error });
    }
  }
}

function sysctlPairs(settings: Readonly<Record<string, string | number>>): string[] {
  return Object.entries(settings).map(([key, value]) => {
    if (!/^net\.[A-Za-z0-9_./-]+$/.test(key))
      throw new FerryError('FERRY_E_EXEC', `sysctl: bad key ${JSON.stringify(key)}`);
    if (!/^[A-Za-z0-9_.:-]+$/.test(String(value)))
      throw new FerryError('FERRY_E_EXEC', `sysctl ${key}: bad value ${JSON.stringify(value)}`);
    return `${key}=${value}`;
  });
}

/** Runs `ip ARGS` (optionally in a namespace given by path) and parses its `-j` JSON output. */
export async function ipJson<T>(args: readonly string[], netnsPath?: string): Promise<T> {
  const argv = ['-j', ...args];
  const result =
    netnsPath === undefined
      ? await run('ip', argv)
      : await run('nsenter', [`--net=${netnsPath}`, '--', 'ip', ...argv]);
  const text = result.stdout.trim();
  return (text === '' ? [] : JSON.parse(text)) as T;
}

/** Sets sysctls inside the network namespace at `netnsPath` (net.* sysctls are per namespace). */
export async function sysctlIn(
  netnsPath: string,
  settings: Readonly<Record<string, string | number>>,
): Promise<void> {
  const pairs = sysctlPairs(settings);
  if (pairs.length === 0) return;
  await run('nsenter', [`--net=${netnsPath}`, '--', 'sysctl', '-q', '-w', ...pairs]);
}

/** Runs `tasks` with at most `limit` in flight; the results keep the input order. */
export async function inParallel<T>(limit: number, tasks: readonly (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      try {
        results[i] = await tasks[i]!();
      } catch (error) {
        errors.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1)
    throw new AggregateError(
      errors,
      `${errors.length} of ${tasks.length} tasks failed: ${String(errors[0])}`,
    );
  return results;
}
