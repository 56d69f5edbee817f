// Watches a manifest directory and reports what changed per object. fs.watch is only a hint that
// something moved: every reaction is a rescan that compares file signatures, so a missed or
// coalesced event costs latency, never correctness, and a periodic rescan backs it up. Events are
// debounced because editors save in several steps (write a temp file, rename it over the target).
import fs, { type FSWatcher } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { FerryError } from '../../common/errors.ts';
import { logger } from '../../common/log.ts';
import type { EndpointSlice, Node, Pod, Service } from '../../model/k8s.ts';
import { listManifestFiles, mergeFiles, sameSignature, type FileSignature } from './directory.ts';
import {
  parseManifestFile,
  type FileParse,
  type KeptObject,
  type ManifestIssue,
  type ParsedObject,
} from './parse.ts';

const log = logger('manifest-watcher');

type Change<K extends string, T> = {
  readonly kind: K;
  /** `namespace/name`, or `name` for a Node. */
  readonly key: string;
  readonly previous: T | undefined;
  readonly current: T | undefined;
};

export type ManifestObjectChange =
  | Change<'Service', Service>
  | Change<'EndpointSlice', EndpointSlice>
  | Change<'Pod', Pod>
  | Change<'Node', Node>;

export interface ManifestWatcherOptions {
  /** Called once per scan that changed something, with every change of that scan. */
  readonly onChanges: (changes: readonly ManifestObjectChange[]) => void;
  /** Quiet time after the last fs event before rescanning. */
  readonly debounceMs?: number;
  /** A stream of events never postpones a rescan longer than this. */
  readonly maxDelayMs?: number;
  /** Rescan this often whatever fs.watch says (it can miss events on some file systems). */
  readonly rescanMs?: number;
  /** Use fs.watch (default). Off: only the periodic rescan, e.g. on NFS where inotify sees nothing. */
  readonly watch?: boolean;
}

interface FileState {
  readonly signature: FileSignature;
  /** What the merge uses: the last parse that was valid YAML, with the newest issues. */
  readonly effective: FileParse;
}

export function keyOf(object: ParsedObject): string {
  const meta = object.entry.object.metadata;
  return object.entry.kind === 'Node' ? meta.name : `${meta.namespace}/${meta.name}`;
}

export class ManifestWatcher {
  readonly #dir: string;
  readonly #options: ManifestWatcherOptions;
  readonly #files = new Map<string, FileState>();
  #objects: ReadonlyMap<string, ParsedObject> = new Map();
  #issues: readonly ManifestIssue[] = [];
  #kept: readonly KeptObject[] = [];
  #dirIssue: ManifestIssue | undefined;
  #fsWatcher: FSWatcher | undefined;
  #dirWatcher: FSWatcher | undefined;
  #watchWarned = false;
  #debounce: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  readonly #rescan: NodeJS.Timeout;
  /** Files named by fs events since the last scan: read even if their signature looks unchanged. */
  #dirty = new Set<string>();
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #synced = false;
  #resolveListed!: () => void;
  /** Resolves after the first full scan has been delivered through `onChanges`. */
  readonly initialListDone: Promise<void>;

  private constructor(dir: string, options: ManifestWatcherOptions) {
    this.#dir = dir;
    this.#options = options;
    this.initialListDone = new Promise((resolve) => (this.#resolveListed = resolve));
    this.#rescan = setInterval(() => this.#trigger(), options.rescanMs ?? 10_000);
    this.#rescan.unref();
  }

  /** Starts watching; the first scan runs at once. Fails if `dir` is not a readable directory. */
  static open(dir: string, options: ManifestWatcherOptions): ManifestWatcher {
    let st;
    try {
      st = fs.statSync(dir);
    } catch (err) {
      throw new FerryError('FERRY_E_SOURCE', `manifest directory ${dir}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (!st.isDirectory())
      throw new FerryError('FERRY_E_SOURCE', `manifest directory ${dir}: not a directory`);
    const w = new ManifestWatcher(path.resolve(dir), options);
    w.#watch();
    w.#trigger();
    return w;
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** Current problems: unparsable files and documents, duplicates, an unreadable directory. */
  issues(): readonly ManifestIssue[] {
    return this.#dirIssue ? [this.#dirIssue, ...this.#issues] : this.#issues;
  }

  /** Well-formed objects of kinds Ferry does not use yet. */
  kept(): readonly KeptObject[] {
    return this.#kept;
  }

  /**
   * Whether some file is currently unparsable or unreadable. Its objects are unknown (or stale),
   * so a Service missing from the directory may only be hidden, not deleted.
   */
  get incomplete(): boolean {
    for (const f of this.#files.values()) if (f.effective.syntaxError) return true;
    return this.#dirIssue !== undefined;
  }

  /** Where the object in use for `identity` (`Kind namespace/name`) is defined. */
  locate(identity: string): { readonly file: string; readonly document: number } | undefined {
    const o = this.#objects.get(identity);
    return o ? { file: o.file, document: o.document } : undefined;
  }

  /** Rescans now (after pending events); resolves when that scan has been delivered. */
  async rescan(): Promise<void> {
    this.#trigger();
    while (this.#running) await this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#rescan);
    clearTimeout(this.#debounce);
    clearTimeout(this.#deadline);
    this.#fsWatcher?.close();
    this.#fsWatcher = undefined;
    this.#dirWatcher?.close();
    this.#dirWatcher = undefined;
    while (this.#running) await this.#running;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #watch(): void {
    if (this.#options.watch === false) return;
    try {
      const w = fs.watch(this.#dir, { recursive: true, persistent: false }, (_event, filename) => {
        if (filename) this.#dirty.add(filename.toString());
        this.#schedule();
      });
      w.on('error', (err) => {
        // e.g. the directory was removed; the periodic rescan carries on and re-arms the watch.
        log.warn({ err, dir: this.#dir }, 'fs.watch failed; relying on the periodic rescan');
        w.close();
        if (this.#fsWatcher === w) this.#fsWatcher = undefined;
      });
      this.#fsWatcher = w;
      // Node's recursive watch on Linux follows files, not directory entries: after a file was
      // replaced by rename (how editors and kubectl-like tools save), its later deletion is not
      // reported (seen: 7 s, until the periodic rescan). A plain inotify watch on the top
      // directory reports unlink and rename of its entries.
      this.#dirWatcher?.close();
      this.#dirWatcher = fs.watch(this.#dir, { persistent: false }, (_event, filename) => {
        if (filename) this.#dirty.add(filename.toString());
        this.#schedule();
      });
      this.#dirWatcher.on('error', () => {
        this.#dirWatcher?.close();
        this.#dirWatcher = undefined;
      });
      this.#watchWarned = false;
    } catch (err) {
      // Retried at every scan; said once per outage.
      if (!this.#watchWarned)
        log.warn({ err, dir: this.#dir }, 'fs.watch unavailable; relying on the periodic rescan');
      this.#watchWarned = true;
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => this.#trigger(), this.#options.debounceMs ?? 100);
    this.#deadline ??= setTimeout(() => this.#trigger(), this.#options.maxDelayMs ?? 1000);
  }

  #trigger(): void {
    clearTimeout(this.#debounce);
    clearTimeout(this.#deadline);
    this.#debounce = undefined;
    this.#deadline = undefined;
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop();
  }

  async #loop(): Promise<void> {
    // The exit test and the reset of #running run in one synchronous step, so a trigger arriving
    // between them cannot set #again on a loop that has already decided to stop.
    try {
      do {
        this.#again = false;
        try {
          await this.#scan();
        } catch (err) {
          log.error({ err, dir: this.#dir }, 'manifest scan failed');
        }
      } while (this.#again && !this.#closed);
    } finally {
      this.#running = undefined;
    }
  }

  async #scan(): Promise<void> {
    if (!this.#fsWatcher) this.#watch();
    const dirty = this.#dirty;
    this.#dirty = new Set();
    let listed: Map<string, FileSignature>;
    try {
      listed = await listManifestFiles(this.#dir);
      this.#dirIssue = undefined;
    } catch (err) {
      // An unmounted or vanished directory keeps the last objects: deleting every Service because a
      // volume blinked would be worse than serving slightly stale ones.
      this.#dirIssue = { file: '.', message: `directory unreadable: ${(err as Error).message}` };
      // A recreated directory is a new inode: drop the old watch so the next scan arms a fresh one.
      this.#fsWatcher?.close();
      this.#fsWatcher = undefined;
      this.#finishScan([]);
      return;
    }
    for (const [file, signature] of listed) {
      const known = this.#files.get(file);
      if (known && sameSignature(known.signature, signature) && !dirty.has(file)) continue;
      let parsed: FileParse;
      try {
        parsed = parseManifestFile(file, await fs.promises.readFile(path.join(this.#dir, file), 'utf8'));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          listed.delete(file); // removed or renamed away since the listing
          continue;
        }
        // Unreadable for now (permissions, I/O): like a syntax error, keep what it said before.
        const message = `unreadable: ${(err as Error).message}`;
        parsed = { objects: [], kept: [], issues: [{ file, message }], syntaxError: true };
      }
      const effective: FileParse = parsed.syntaxError
        ? {
            objects: known?.effective.objects ?? [],
            kept: known?.effective.kept ?? [],
            issues: parsed.issues,
            syntaxError: true,
          }
        : parsed;
      this.#files.set(file, { signature, effective });
    }
    for (const file of [...this.#files.keys()]) if (!listed.has(file)) this.#files.delete(file);
    if (this.#closed) return;
    const merged = mergeFiles(new Map([...this.#files].map(([f, s]) => [f, s.effective])));
    const changes = diffObjects(this.#objects, merged.objects);
    this.#objects = merged.objects;
    this.#issues = merged.issues;
    this.#kept = merged.kept;
    this.#finishScan(changes);
  }

  #finishScan(changes: readonly ManifestObjectChange[]): void {
    if (this.#closed) return;
    if (changes.length > 0 || !this.#synced) this.#options.onChanges(changes);
    if (!this.#synced) {
      this.#synced = true;
      this.#resolveListed();
    }
  }
}

/** Per-object changes between two merged sets, dropping objects that are deep-equal. */
export function diffObjects(
  before: ReadonlyMap<string, ParsedObject>,
  after: ReadonlyMap<string, ParsedObject>,
): ManifestObjectChange[] {
  const changes: ManifestObjectChange[] = [];
  for (const identity of new Set([...before.keys(), ...after.keys()])) {
    const prev = before.get(identity);
    const cur = after.get(identity);
    const previous = prev?.entry.object;
    const current = cur?.entry.object;
    if (isDeepStrictEqual(previous, current)) continue;
    const kind = (cur ?? prev)!.entry.kind;
    const key = keyOf((cur ?? prev)!);
    // The kind ties previous and current to the same type; TypeScript cannot follow that through
    // two independent lookups, hence the cast.
    changes.push({ kind, key, previous, current } as ManifestObjectChange);
  }
  return changes;
}
