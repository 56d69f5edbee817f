// Teardown that needs nothing but a lab's name: everything a lab creates is named after it, so a
// crashed run (no state file, half-built) is cleaned up the same way as a finished one. Order:
// kill processes (they pin namespaces alive), delete namespaces (veths go with them), then
// cgroups, pins, state.
import { rm } from 'node:fs/promises';
import { FerryError } from '../common/errors.ts';
import { logger } from '../common/log.ts';
import { belongsToLab, checkLabName, generatedLabOf, LAB_NAME, NETNS_DIR, STATE_DIR } from './plan.ts';
import { run } from '../common/run.ts';
import {
  bpffsMount,
  cgroup2Mount,
  killCgroup,
  listDir,
  pidsInNetns,
  removeCgroupTree,
  removeState,
} from './system.ts';

const log = logger('lab');

/** What of a lab (or of every lab) still exists on the machine. */
export interface LabResidue {
  readonly netns: readonly string[];
  readonly cgroups: readonly string[];
  readonly pinDirs: readonly string[];
  readonly stateFiles: readonly string[];
}

/** What is left of lab `name`, or of every lab on the machine when no name is given. */
export async function labResidue(name?: string): Promise<LabResidue> {
  if (name !== undefined) checkLabName(name);
  const [cgroupMount, bpffs] = await Promise.all([cgroup2Mount(), bpffsMount()]);
  const names = name !== undefined ? [name] : await labNamesOnMachine();
  const mine = (entry: string): boolean => names.some((n) => belongsToLab(entry, n));
  return {
    netns: (await listDir(NETNS_DIR)).filter(mine).sort(),
    cgroups: (await listDir(cgroupMount))
      .filter(mine)
      .map((e) => `${cgroupMount}/${e}`)
      .sort(),
    pinDirs:
      bpffs === null
        ? []
        : (await listDir(bpffs))
            .filter(mine)
            .map((e) => `${bpffs}/${e}`)
            .sort(),
    stateFiles: (await listDir(STATE_DIR))
      .filter(mine)
      .map((e) => `${STATE_DIR}/${e}`)
      .sort(),
  };
}

export function isEmptyResidue(r: LabResidue): boolean {
  return r.netns.length + r.cgroups.length + r.pinDirs.length + r.stateFiles.length === 0;
}

/**
 * Names of the labs with anything left on the machine: every lab with a state file (written before
 * anything else is created), plus leftovers whose names have the generated shape.
 */
export async function labNamesOnMachine(): Promise<string[]> {
  const [cgroupMount, bpffs] = await Promise.all([cgroup2Mount(), bpffsMount()]);
  const names = new Set<string>();
  for (const entry of await listDir(STATE_DIR)) {
    const m = /^(.*)\.json$/.exec(entry);
    if (m && LAB_NAME.test(m[1]!)) names.add(m[1]!);
  }
  const entries = [
    ...(await listDir(NETNS_DIR)),
    ...(await listDir(cgroupMount)),
    ...(bpffs === null ? [] : await listDir(bpffs)),
    ...(await listDir(STATE_DIR)),
  ];
  for (const entry of entries) {
    const lab = generatedLabOf(entry);
    if (lab !== undefined) names.add(lab);
  }
  return [...names].sort();
}

/**
 * Removes everything of lab `name`. Idempotent; works without a state file. A crashed owner may
 * leave an `ip` child still creating things for a moment, so the sweep repeats until nothing is
 * left (or gives up after a few rounds and says what remains).
 */
export async function destroyLab(name: string): Promise<void> {
  checkLabName(name);
  for (let round = 0; round < 5; round++) {
    const residue = await labResidue(name);
    if (isEmptyResidue(residue)) {
      log.debug({ lab: name }, 'lab destroyed');
      return;
    }
    if (round > 0) await new Promise((r) => setTimeout(r, 50 * round));
    await sweep(name, residue);
  }
  const left = await labResidue(name);
  if (!isEmptyResidue(left))
    throw new FerryError('FERRY_E_LAB', `lab ${name}: teardown left ${JSON.stringify(left)}`);
}

async function sweep(name: string, residue: LabResidue): Promise<void> {
  // cgroup.kill on the lab's cgroup reaches every node's and the client's processes.
  for (const dir of residue.cgroups) await killCgroup(dir);
  // Stragglers that entered a lab namespace without joining a lab cgroup.
  const paths = residue.netns.map((n) => `${NETNS_DIR}/${n}`);
  for (const pid of await pidsInNetns(paths)) {
    if (pid === process.pid) continue; // `ferry lab down` run from inside the lab
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (residue.netns.length > 0) {
    const input = residue.netns.map((n) => `netns del ${n}`).join('\n') + '\n';
    // -force: keep going past a namespace that vanished meanwhile.
    await run('ip', ['-force', '-batch', '-'], { input, allowFailure: true });
  }
  for (const dir of residue.cgroups) await removeCgroupTree(dir);
  for (const dir of residue.pinDirs) await rm(dir, { recursive: true, force: true });
  await removeState(name);
}

/** Removes every lab on the machine, including leftovers of crashed runs. Returns their names. */
export async function destroyAllLabs(): Promise<string[]> {
  const names = await labNamesOnMachine();
  for (const name of names) await destroyLab(name);
  return names;
}
