// Watches a manifest directory and reports what changed per object. fs.watch is only a hint that
// something moved: every reaction is a rescan that compares file signatures, so a missed or
// coalesced event costs latency, never correctness, and a periodic rescan backs it up. Events are
// debounced because editors save in several steps (write a temp file, rename it over the target).
//
// A file is read only once it has settled: its mtime is at least `settleMs` (default 250 ms) in the
// past. Until then, and while it is invalid YAML, unreadable or too large, the file's last complete
// version stays in force, so a truncate-then-write or a slow writer never makes its Services leave
// (or come back with new addresses). A file whose new version has document-level errors (a bad
// port, a removed name) also keeps the last valid version of every object it defined: nothing is
// deleted by a broken edit, as a rejected `kubectl apply` deletes nothing. Removing the file, or
// the object from a file that is otherwise valid, is what deletes.
//
// Directories are watched one by one (plain inotify watches on each directory the listing walked)
// rather than with Node's recursive watch, whose own directory crawl throws ELOOP out of an event
// handler on a symlink loop; the listing decides what is walked and reports what it could not.
import fs, { type FSWatcher } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { FerryError } from '../../common/errors.ts';
import { logger } from '../../common/log.ts';
import type { Transition } from '../../model/change.ts';
import { listManifestFiles, mergeFiles, sameSignature, type FileSignature } from './directory.ts';

export const DEFAULT_SETTLE_MS = 250;
export const DEFAULT_MAX_FILE_BYTES = 4 * 1024 * 1024;
import { loadFile, SettleClock, type FileState } from './file-state.ts';
import {
  clusterScoped,
  formatIssue,
  type KeptObject,
  type ManifestIssue,
  type ParsedObject,
  type UsedObject,
} from './parse.ts';

const log = logger('manifest-watcher');

/** One object of the directory before and after a scan, as read (a Pod whole, a Namespace as written). */
type ObjectChangeOf<U extends UsedObject> = U extends UsedObject
  ? { readonly kind: U['kind']; readonly key: string } & Transition<U['object']>
  : never;
export type ManifestObjectChange = ObjectChangeOf<UsedObject>;

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
  /** A changed file is read once its mtime is this old (default 250 ms); until then its last version holds. */
  readonly settleMs?: number;
  /** Larger files are refused by name without being read (default 4 MiB). */
  readonly maxFileBytes?: number;
}

export function keyOf(object: ParsedObject): string {
  const meta = object.entry.object.metadata;
  return clusterScoped(object.entry.kind) ? meta.name : `${meta.namespace}/${meta.name}`;
}

export class ManifestWatcher {
  readonly #dir: string;
  readonly #options: ManifestWatcherOptions;
  readonly #files = new Map<string, FileState>();
  #objects: ReadonlyMap<string, ParsedObject> = new Map();
  #issues: readonly ManifestIssue[] = [];
  #kept: readonly KeptObject[] = [];
  #dirIssue: ManifestIssue | undefined;
  #listingIssues: readonly ManifestIssue[] = [];
  /** Watched directory (relative to the root, '' for the root) → its watcher. */
  readonly #dirWatchers = new Map<string, FSWatcher>();
  #watchWarned = false;
  /** Changed files not yet settled: a scan is due when the oldest of them settles. */
  #settling = new Set<string>();
  readonly #clock: SettleClock;
  #settleTimer: NodeJS.Timeout | undefined;
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
    this.#clock = new SettleClock(options.settleMs ?? DEFAULT_SETTLE_MS);
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
    w.#watch(['']);
    w.#trigger();
    return w;
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** Current problems: unparsable files and documents, duplicates, an unreadable directory. */
  issues(): readonly ManifestIssue[] {
    const all = [...this.#listingIssues, ...this.#issues];
    return this.#dirIssue ? [this.#dirIssue, ...all] : all;
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

  /**
   * Rescans now (after pending events); resolves when that scan has been delivered and every
   * changed file it saw has settled and been read (or after 20 settle times of a file that keeps
   * changing).
   */
  async rescan(): Promise<void> {
    this.#trigger();
    while (this.#running) await this.#running;
    // Bounded: a file written without pause never settles, and a caller must not wait for ever.
    for (let round = 0; round < 20 && this.#settling.size > 0 && !this.#closed; round++) {
      await new Promise((resolve) => setTimeout(resolve, this.#settleMs));
      this.#trigger();
      while (this.#running) await this.#running;
    }
  }

  get #settleMs(): number {
    return this.#options.settleMs ?? DEFAULT_SETTLE_MS;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#rescan);
    clearTimeout(this.#debounce);
    clearTimeout(this.#deadline);
    clearTimeout(this.#settleTimer);
    for (const w of this.#dirWatchers.values()) w.close();
    this.#dirWatchers.clear();
    while (this.#running) await this.#running;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Watches exactly `dirs` (relative to the root): new ones are armed, vanished ones closed. */
  #watch(dirs: readonly string[]): void {
    if (this.#options.watch === false) return;
    const want = new Set(dirs);
    for (const [rel, w] of this.#dirWatchers)
      if (!want.has(rel)) {
        w.close();
        this.#dirWatchers.delete(rel);
      }
    for (const rel of want) {
      if (this.#dirWatchers.has(rel)) continue;
      try {
        const w = fs.watch(path.join(this.#dir, rel), { persistent: false }, (_event, filename) => {
          if (filename) this.#dirty.add(rel ? path.join(rel, filename.toString()) : filename.toString());
          this.#schedule();
        });
        w.on('error', (err) => {
          // e.g. the directory was removed; the next scan re-arms what still exists.
          if (rel === '')
            log.warn({ err, dir: this.#dir }, 'fs.watch failed; relying on the periodic rescan');
          w.close();
          if (this.#dirWatchers.get(rel) === w) this.#dirWatchers.delete(rel);
          this.#schedule();
        });
        this.#dirWatchers.set(rel, w);
        // A directory that appeared since the last listing may have had files written into it
        // before this watch existed: look once more.
        if (rel !== '' && this.#synced) this.#schedule();
      } catch (err) {
        // Retried at every scan; said once per outage.
        if (!this.#watchWarned)
          log.warn(
            { err, dir: path.join(this.#dir, rel) },
            'fs.watch unavailable; relying on the periodic rescan',
          );
        this.#watchWarned = true;
      }
    }
    if (this.#dirWatchers.has('')) this.#watchWarned = false;
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
    const dirty = this.#dirty;
    this.#dirty = new Set();
    const listed = await this.#list();
    if (listed === undefined) return;
    const settling = new Set<string>();
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    let soonestNs: bigint | undefined;
    const maxBytes = this.#options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    for (const [file, signature] of listed) {
      const known = this.#files.get(file);
      if (known && sameSignature(known.signature, signature) && !dirty.has(file)) continue;
      // The first scan reads everything: there is no earlier version to keep, and a half-written
      // file is invalid YAML (kept out) or is corrected by the next change.
      const wait = this.#clock.wait(file, signature, nowNs);
      if (this.#synced && wait !== undefined) {
        settling.add(file);
        if (soonestNs === undefined || wait < soonestNs) soonestNs = wait;
        continue;
      }
      const state = await loadFile(this.#dir, file, signature, known, maxBytes);
      if (state) this.#files.set(file, state);
      else listed.delete(file); // removed or renamed away since the listing
    }
    for (const file of [...this.#files.keys()]) if (!listed.has(file)) this.#files.delete(file);
    this.#clock.retain(settling);
    this.#settling = settling;
    this.#armSettleTimer(soonestNs);
    if (this.#closed) return;
    this.#finishScan(this.#merge());
  }

  /** The directory's files, or undefined when it is unreadable (the scan then ends as it is). */
  async #list(): Promise<Map<string, FileSignature> | undefined> {
    try {
      const listing = await listManifestFiles(this.#dir);
      this.#listingIssues = listing.problems;
      this.#dirIssue = undefined;
      this.#watch(listing.dirs);
      return listing.files;
    } catch (err) {
      // An unmounted or vanished directory keeps the last objects: deleting every Service because a
      // volume blinked would be worse than serving slightly stale ones.
      this.#dirIssue = { file: '.', message: `directory unreadable: ${(err as Error).message}` };
      // A recreated directory is a new inode: drop the old watches so the next scan arms fresh ones.
      this.#watch([]);
      this.#finishScan([]);
      return undefined;
    }
  }

  /** A scan is due when the first settling file settles. */
  #armSettleTimer(soonestNs: bigint | undefined): void {
    clearTimeout(this.#settleTimer);
    this.#settleTimer = undefined;
    if (soonestNs === undefined || this.#closed) return;
    this.#settleTimer = setTimeout(() => this.#trigger(), Number(soonestNs / 1_000_000n) + 1);
    this.#settleTimer.unref();
  }

  /** Merges the files' contributions and returns the per-object changes against the last merge. */
  #merge(): ManifestObjectChange[] {
    const merged = mergeFiles(new Map([...this.#files].map(([f, s]) => [f, s.effective])), this.#objects);
    const changes = diffObjects(this.#objects, merged.objects);
    const before = new Set(this.#issues.map(formatIssue));
    for (const issue of merged.issues)
      if (issue.message.startsWith('duplicate:') && !before.has(formatIssue(issue)))
        log.warn({ file: issue.file, object: issue.object }, formatIssue(issue));
    this.#objects = merged.objects;
    this.#issues = merged.issues;
    this.#kept = merged.kept;
    return changes;
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
