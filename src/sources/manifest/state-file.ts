// The allocations on disk, so that a restarted agent hands every Service the same ClusterIPs and
// NodePorts: clients and firewalls remember them. Written atomically (temp file, fsync, rename):
// a crash leaves the old file or the new one, never half of one, and the directory is fsynced after
// the rename so the new name itself survives a power cut. A failed write removes its temp file.
import fs from 'node:fs';
import path from 'node:path';
import { logger } from '../../common/log.ts';
import type { AllocationState, Holding } from './allocator.ts';

const log = logger('manifest-state');
const VERSION = 1;

interface StateFile {
  readonly version: number;
  readonly services: AllocationState;
}

function isHolding(v: unknown): v is Holding {
  if (typeof v !== 'object' || v === null) return false;
  const h = v as Record<string, unknown>;
  return (
    Array.isArray(h['clusterIPs']) &&
    h['clusterIPs'].every((ip) => typeof ip === 'string') &&
    typeof h['nodePorts'] === 'object' &&
    h['nodePorts'] !== null &&
    Object.values(h['nodePorts']).every((p) => Number.isInteger(p)) &&
    (h['healthCheckNodePort'] === undefined || Number.isInteger(h['healthCheckNodePort']))
  );
}

export class AllocationStateFile {
  readonly path: string;
  #lastWritten = '';
  /** Why the last load found the file unusable (it was moved aside), for the source's status. */
  #corruption: string | undefined;

  constructor(stateDir: string) {
    this.path = path.join(stateDir, 'allocations.json');
  }

  get corruption(): string | undefined {
    return this.#corruption;
  }

  /**
   * Reads the saved state; a missing file is an empty state. A corrupt one is moved aside (kept
   * for a post-mortem) and also treated as empty, rather than blocking the agent from starting.
   */
  load(): AllocationState {
    let text: string;
    try {
      text = fs.readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
    try {
      const parsed = JSON.parse(text) as Partial<StateFile>;
      if (parsed.version !== VERSION || typeof parsed.services !== 'object' || parsed.services === null)
        throw new Error(`unsupported version ${String(parsed.version)}`);
      const services: Record<string, Holding> = {};
      for (const [key, h] of Object.entries(parsed.services)) if (isHolding(h)) services[key] = h;
      this.#lastWritten = text;
      return services;
    } catch (err) {
      const aside = `${this.path}.corrupt-${Date.now()}`;
      fs.renameSync(this.path, aside);
      this.#corruption = `${(err as Error).message}; moved aside to ${path.basename(aside)}`;
      log.error({ err, file: this.path, movedTo: aside }, 'allocation state unreadable');
      return {};
    }
  }

  /** Writes the state if it differs from what is on disk. */
  save(services: AllocationState): void {
    const text = `${JSON.stringify({ version: VERSION, services } satisfies StateFile, null, 2)}\n`;
    if (text === this.#lastWritten) return;
    fs.mkdirSync(path.dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp-${process.pid}`;
    try {
      const fd = fs.openSync(tmp, 'w', 0o644);
      try {
        fs.writeFileSync(fd, text);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.path);
    } catch (err) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // never created, or already gone: the write's own error is the one to report
      }
      throw err;
    }
    const dirFd = fs.openSync(path.dirname(this.path), 'r');
    try {
      fs.fsyncSync(dirFd);
    } catch (err) {
      // Some file systems cannot sync a directory (EINVAL); the rename is then as durable as it gets.
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    } finally {
      fs.closeSync(dirFd);
    }
    this.#lastWritten = text;
  }
}
