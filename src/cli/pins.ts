// Commands that read the pinned maps check first that the datapath is there, so "not installed"
// is one clear line (exit 3) rather than the ENOENT of whichever map happened to be opened first.
import fs from 'node:fs';
import path from 'node:path';
import { CliError, EXIT } from './errors.ts';

const SERVICES_MAP = 'ferry_services_v1'; // src/datapath/socket-lb.ts LB_MAP_NAMES.services

export function requireDatapath(pinDir: string): void {
  if (!fs.existsSync(path.join(pinDir, SERVICES_MAP)))
    throw new CliError(
      `no Ferry datapath pinned in ${pinDir} (no ${SERVICES_MAP}): is the agent running, and is this its --pin-dir?`,
      EXIT.notRunning,
    );
}

/** The packet path's maps exist only when the agent runs with NodePort interfaces. */
export function requireNorthSouth(pinDir: string): void {
  requireDatapath(pinDir);
  if (!fs.existsSync(path.join(pinDir, 'ferry_np_ct_v1')))
    throw new CliError(
      `north-south is not installed in ${pinDir} (no ferry_np_ct_v1): run the agent with --nodeport-interfaces`,
      EXIT.notRunning,
    );
}
