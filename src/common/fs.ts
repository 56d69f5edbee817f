// Directory creation that cannot loop. Node's recursive mkdirSync retries a component that fails
// with ENOENT (as every mkdir under /proc does) forever at 100 % CPU; this walks up to the nearest
// existing ancestor and creates each missing component once, so any failure ends in one error
// naming the directory.
import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from './errors.ts';

/** Creates `dir` and its missing parents; `what` names the setting in the error (e.g. `--run-dir`). */
export function makeDirs(dir: string, what: string, mode = 0o755): void {
  const missing: string[] = [];
  let at = path.resolve(dir);
  for (;;) {
    const stat = fs.statSync(at, { throwIfNoEntry: false });
    if (stat) {
      if (!stat.isDirectory()) throw new InvalidArgumentError(`${what} ${dir}: ${at} is not a directory`);
      break;
    }
    missing.unshift(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const d of missing) {
    try {
      fs.mkdirSync(d, { mode });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      if (code === 'EEXIST' && fs.statSync(d, { throwIfNoEntry: false })?.isDirectory()) continue;
      throw new InvalidArgumentError(`${what} ${dir}: cannot create ${d} (${code})`);
    }
  }
}
