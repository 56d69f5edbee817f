// North-south filters hang on interfaces, and interface names only mean something inside one
// network namespace. The agent records the namespace it runs in, so `ferry agent --uninstall`
// (run from anywhere) detaches them there and never touches a same-named interface elsewhere.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FerryError } from '../common/errors.ts';
import { NodeportDatapath } from '../datapath/nodeport/install.ts';

export const NETNS_FILE = 'netns';
const NETNS_DIR = '/run/netns';
const ENTRY = fileURLToPath(new URL('./uninstall-nodeport.ts', import.meta.url));

const netnsId = (file: string): string => {
  const st = fs.statSync(file);
  return `${st.dev}:${st.ino}`;
};

/** Writes the identity of this process's network namespace into the run dir. */
export function recordNetns(runDir: string): void {
  fs.writeFileSync(path.join(runDir, NETNS_FILE), `${netnsId('/proc/self/ns/net')}\n`, { mode: 0o600 });
}

/** Detaches north-south in the namespace the agent recorded; returns the interfaces cleaned. */
export function uninstallNorthSouth(runDir: string): number {
  const file = path.join(runDir, NETNS_FILE);
  const recorded = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : '';
  // No record of filters (nodeport.json, NodeportDatapath's), or the same namespace: detach here.
  if (!fs.existsSync(path.join(runDir, 'nodeport.json')) || recorded === '' || recorded === netnsId('/proc/self/ns/net'))
    return NodeportDatapath.uninstall(runDir);
  const named = fs.existsSync(NETNS_DIR)
    ? fs.readdirSync(NETNS_DIR).find((n) => {
        try {
          return netnsId(path.join(NETNS_DIR, n)) === recorded;
        } catch {
          return false;
        }
      })
    : undefined;
  if (named === undefined)
    throw new FerryError(
      'FERRY_E_NETLINK',
      `${path.join(runDir, NETNS_FILE)}: the agent ran in network namespace ${recorded}, which is not this one and has no name under ${NETNS_DIR}; run the uninstall inside it (nsenter --net=/proc/<pid>/ns/net)`,
    );
  // Interfaces are looked up by the process's own namespace: run the detach as a child inside it.
  const out = execFileSync('nsenter', [`--net=${path.join(NETNS_DIR, named)}`, process.execPath, ...process.execArgv.filter((a) => !a.startsWith('--test')), ENTRY, runDir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return Number(out.trim()) || 0;
}
