// The agent's status file: written by the agent every sync and every 2 s, read by `ferry status`
// with the agent down. It lives here, outside src/agent, so the CLI reads its name and shape
// without loading the agent's graph (libbpf, the sources) for one constant.
import fs from 'node:fs';
import path from 'node:path';

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
  readonly invalidObjects: readonly { readonly object: string; readonly field: string; readonly message: string }[];
  readonly warnings: readonly string[];
  readonly degraded: readonly string[];
}

export interface StatusSourceIssue {
  readonly object?: string;
  readonly field?: string;
  readonly message: string;
  readonly file?: string;
}

export interface StatusFile {
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
