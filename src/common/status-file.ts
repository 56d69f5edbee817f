// The agent's status file: written by the agent every sync and every 2 s, read by `ferry status`
// with the agent down. It lives here, outside src/agent, so the CLI reads its name and shape
// without loading the agent's graph (libbpf, the sources) for one constant.
import fs from 'node:fs';
import path from 'node:path';
import { FerryError } from './errors.ts';

export const STATUS_FILE = 'status.json';
/** Present while the agent is ready; its content is the epoch ms it became so. */
export const READY_FILE = 'ready';

export interface StatusSync {
  readonly ok: boolean;
  readonly full: boolean;
  readonly at: number;
  readonly durationMs: number;
  readonly error?: string;
}

/** The agent's view of itself (src/agent/agent.ts AgentStatus is this shape and more). */
export interface StatusAgent {
  readonly ready: boolean;
  readonly syncs: number;
  readonly failedSyncs: number;
  readonly consecutiveFailures: number;
  readonly lastSync: StatusSync | undefined;
  readonly lastSuccessAt: number | undefined;
  readonly services: number;
  readonly frontends: number;
  /** Refused Services, slices and NetworkPolicies, by object and field (the previous version is in force). */
  readonly invalidObjects: readonly { readonly object: string; readonly field: string; readonly message: string }[];
  /** What NetworkPolicy knows; absent from agents before policy. Nothing of it is enforced yet. */
  readonly policy?: {
    readonly policies: number;
    readonly pods: number;
    readonly namespaces: number;
    readonly nodes: number;
  };
  readonly warnings: readonly string[];
  readonly degraded: readonly string[];
}

/** Whether connect()/sendmsg() to an unserved address in the service CIDRs is refused, and why not. */
export interface StatusServiceCidrs {
  readonly refusing: boolean;
  readonly cidrs: readonly string[];
  /** Where the CIDRs came from: --service-cidrs, the standalone allocator or the API server's list. */
  readonly from: string;
  /** When not refusing: why (the list failed or found none, or the map could not be written). */
  readonly reason?: string;
}

export interface StatusSourceIssue {
  readonly object?: string;
  readonly field?: string;
  readonly message: string;
  readonly file?: string;
}

/** What the agent writes: the view readers rely on, and the rest for people. */
export interface StatusFile extends StatusFileView {
  readonly node: string;
  readonly pid: number;
  /** `ferry status` proves the agent alive by this socket answering, not by the file alone. */
  readonly apiSocket: string | null;
  readonly pinDir: string;
  readonly cgroup: string;
  readonly source: 'standalone' | 'kubernetes';
  readonly agent: StatusAgent;
  readonly sourceStatus: { readonly issues?: readonly StatusSourceIssue[] } & object;
  readonly podRoutes?: object;
  /** Absent until the first sync is done (they are written after it) and from older agents. */
  readonly serviceCidrs?: StatusServiceCidrs;
  readonly updatedAt: number;
}

export const statusFilePath = (runDir: string): string => path.join(runDir, STATUS_FILE);
export const readyFilePath = (runDir: string): string => path.join(runDir, READY_FILE);

/** Replaces `file` in one rename, so a reader never sees half of it. */
export function writeFileAtomic(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, content, { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch (error) {
    fs.rmSync(tmp, { force: true }); // a full disk must not also keep a half-written temp file
    throw error;
  }
}

export function writeStatusFile(file: string, status: StatusFile): void {
  writeFileAtomic(file, JSON.stringify(status, null, 2));
}

/** The fields a reader may rely on: what readStatusFile checks (older agents wrote no more). */
export interface StatusFileView {
  readonly pid: number;
  readonly updatedAt?: number;
  /** The agent's API socket, when the agent names it (else `observe.sock` in the run dir). */
  readonly apiSocket?: string | null;
  readonly agent: {
    readonly ready: boolean;
    readonly syncs: number;
    readonly failedSyncs: number;
    readonly services: number;
    readonly frontends: number;
    readonly lastSync?: { readonly at: number; readonly ok: boolean; readonly durationMs: number } | undefined;
    readonly invalidObjects: readonly { readonly message: string }[];
    readonly warnings: readonly string[];
  };
  readonly sourceStatus?: { readonly issues?: readonly StatusSourceIssue[] };
}

/** A status file that is there but cannot be trusted; the message names the file and the field. */
export class StatusFileError extends FerryError {
  constructor(file: string, problem: string) {
    super(
      'FERRY_E_INVALID_ARGUMENT',
      `${file}: ${problem}: the agent's status file is corrupt (the agent rewrites it every 2 s; if no agent runs, remove the file)`,
    );
  }
}

function checkField(file: string, object: Record<string, unknown>, prefix: string, field: string, type: 'number' | 'boolean' | 'array'): void {
  const value = object[field];
  const ok = type === 'array' ? Array.isArray(value) : typeof value === type;
  if (!ok) throw new StatusFileError(file, `field ${prefix}${field}: ${value === undefined ? 'missing' : `not a${type === 'array' ? 'n' : ''} ${type}`}`);
}

/** The status file, or undefined if there is none; a StatusFileError naming the file and field if it is corrupt. */
export function readStatusFile(file: string): StatusFileView | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new StatusFileError(file, `not valid JSON (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new StatusFileError(file, 'not a JSON object');
  const top = raw as Record<string, unknown>;
  if (!Number.isInteger(top.pid) || (top.pid as number) <= 0) throw new StatusFileError(file, `field pid: ${top.pid === undefined ? 'missing' : 'not a positive integer'}`);
  if (typeof top.agent !== 'object' || top.agent === null) throw new StatusFileError(file, 'field agent: missing or not an object');
  const agent = top.agent as Record<string, unknown>;
  checkField(file, agent, 'agent.', 'ready', 'boolean');
  for (const f of ['syncs', 'failedSyncs', 'services', 'frontends']) checkField(file, agent, 'agent.', f, 'number');
  for (const f of ['invalidObjects', 'warnings']) checkField(file, agent, 'agent.', f, 'array');
  return raw as StatusFileView;
}
