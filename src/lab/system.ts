// The lab's touch points with the machine outside the network stack: the cgroup2 and bpffs
// mounts, cgroup directories, the state files, and finding processes by network namespace.
import { mkdir, readdir, readFile, readlink, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { FerryError } from '../common/errors.ts';
import { BPFFS, STATE_DIR } from './plan.ts';
import type { LabState } from './types.ts';

async function mounts(): Promise<{ readonly dir: string; readonly type: string }[]> {
  const text = await readFile('/proc/mounts', 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const f = l.split(' ');
      // /proc/mounts escapes blanks as octal.
      return {
        dir: f[1]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))),
        type: f[2]!,
      };
    });
}

/** The cgroup v2 mount point (hybrid hierarchies mount it beside v1, so it is looked up, not assumed). */
export async function cgroup2Mount(): Promise<string> {
  const found = (await mounts()).find((m) => m.type === 'cgroup2');
  if (!found) throw new FerryError('FERRY_E_LAB', 'no cgroup2 mount in /proc/mounts');
  return found.dir;
}

/** BPFFS when a bpffs is mounted there, else null. */
export async function bpffsMount(): Promise<string | null> {
  return (await mounts()).some((m) => m.type === 'bpf' && m.dir === BPFFS) ? BPFFS : null;
}

/** Kills every process in a cgroup subtree and waits until it is empty. */
export async function killCgroup(dir: string, timeoutMs = 5000): Promise<void> {
  try {
    await writeFile(`${dir}/cgroup.kill`, '1');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await readFile(`${dir}/cgroup.events`, 'utf8').catch(() => 'populated 0');
    if (/^populated 0$/m.test(events)) return;
    if (Date.now() > deadline)
      throw new FerryError('FERRY_E_LAB', `cgroup ${dir}: processes survived cgroup.kill`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Removes a cgroup directory and its children, deepest first (cgroupfs only allows rmdir). */
export async function removeCgroupTree(dir: string): Promise<void> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  for (const e of entries) if (e.isDirectory()) await removeCgroupTree(`${dir}/${e.name}`);
  await rmdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

/** Pids of every process whose network namespace is the one bound at `netnsPath`. */
export async function pidsInNetns(netnsPaths: readonly string[]): Promise<number[]> {
  const inodes = new Set<string>();
  for (const p of netnsPaths) {
    const s = await stat(p).catch(() => undefined);
    if (s) inodes.add(`net:[${s.ino}]`);
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const link = await readlink(`/proc/${entry}/ns/net`).catch(() => undefined);
    if (link !== undefined && inodes.has(link)) pids.push(Number(entry));
  }
  return pids;
}

export function statePath(name: string): string {
  return `${STATE_DIR}/${name}.json`;
}

/** Writes the state file atomically (rename), so a reader never sees half of it. */
export async function writeState(state: LabState): Promise<void> {
  await mkdir(STATE_DIR, { recursive: true });
  const path = statePath(state.name);
  await writeFile(`${path}.tmp`, JSON.stringify(state, null, 2) + '\n');
  await rename(`${path}.tmp`, path);
}

export async function readState(name: string): Promise<LabState | undefined> {
  try {
    return JSON.parse(await readFile(statePath(name), 'utf8')) as LabState;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FerryError(
      'FERRY_E_LAB',
      `lab ${name}: state file ${statePath(name)}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

export async function removeState(name: string): Promise<void> {
  await rm(statePath(name), { force: true });
  await rm(`${statePath(name)}.tmp`, { force: true });
  await rm(`${STATE_DIR}/${name}`, { recursive: true, force: true });
}

export async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
