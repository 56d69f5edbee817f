// The pin directory must live on a BPF filesystem: pins anywhere else fail, and a missing mount
// is the most common cause. The standard mount point is mounted when it has none (as Cilium's
// agent does); any other directory that is not on bpffs is refused at once, naming it.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { InvalidArgumentError } from '../../common/errors.ts';
import { makeDirs } from '../../common/fs.ts';

export const BPF_FS_MAGIC = 0xcafe4a11;
export const BPFFS_MOUNT = '/sys/fs/bpf';

function nearestExisting(dir: string): string {
  let at = path.resolve(dir);
  while (!fs.existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
  return at;
}

const onBpffs = (dir: string): boolean => fs.statfsSync(dir).type === BPF_FS_MAGIC;

/** Makes `pinDir` (and `pinDir/links`) exist on bpffs; `flag` names the setting in errors. */
export function ensurePinDir(pinDir: string, flag = '--pin-dir'): void {
  const existing = nearestExisting(pinDir);
  if (!onBpffs(existing)) {
    const resolved = path.resolve(pinDir);
    const standard = resolved === BPFFS_MOUNT || resolved.startsWith(`${BPFFS_MOUNT}/`);
    if (!standard || !fs.existsSync(BPFFS_MOUNT) || onBpffs(BPFFS_MOUNT))
      throw new InvalidArgumentError(
        `${flag} ${pinDir}: ${existing} is not on a BPF filesystem (mount one: mount -t bpf bpffs ${BPFFS_MOUNT})`,
      );
    try {
      execFileSync('mount', ['-t', 'bpf', 'bpffs', BPFFS_MOUNT], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
      throw new InvalidArgumentError(`${flag} ${pinDir}: ${BPFFS_MOUNT} has no BPF filesystem and mounting one failed: ${stderr || (error as Error).message}`);
    }
  }
  makeDirs(path.join(pinDir, 'links'), flag, 0o700);
}
