// A supervised list-watch of one resource. It does what client-go's reflector does and what
// @kubernetes/client-node's informer does not do reliably (it stops on errors): it tracks the
// resourceVersion, asks for bookmarks, re-lists on 410 Gone, restarts on every error with
// exponential backoff and jitter, restarts a watch that has gone silent, and reports the age of its
// last event so health checks can see a stuck source.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Transition } from '../../model/change.ts';
import { KubeApiError } from './client.ts';

export interface KubeApi {
  getJson<T>(path: string, signal?: AbortSignal): Promise<T>;
  watchLines(path: string, signal: AbortSignal): AsyncGenerator<unknown>;
}

export interface ObjectWithMeta {
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
  };
}

export type ListWatchChange<T> = Transition<T>;

export interface ListWatchOptions<T> {
  /** Collection path, e.g. `/api/v1/services` or `/apis/discovery.k8s.io/v1/endpointslices`. */
  readonly path: string;
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
  readonly onChange: (change: ListWatchChange<T>) => void;
  /**
   * What is kept of each listed or watched object, made as it arrives so the whole object is
   * never stored (Pods cluster-wide for policy). It must keep metadata's name, namespace and
   * resourceVersion: the store is keyed and re-lists are diffed by them. Default: the object itself.
   */
  readonly project?: (raw: ObjectWithMeta) => T;
  /** Server-side watch timeout; the watch is then simply resumed from the last resourceVersion. */
  readonly watchTimeoutSeconds?: number;
  /** A watch with no event or bookmark for this long is presumed stuck and restarted. */
  readonly inactivityMs?: number;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  readonly pageSize?: number;
}

export interface ListWatchStatus {
  readonly path: string;
  readonly synced: boolean;
  readonly resourceVersion: string;
  readonly objects: number;
  /** Milliseconds since the last list, event or bookmark; Infinity before the first list. */
  readonly lastEventAgeMs: number;
  readonly relists: number;
  readonly restarts: number;
  readonly lastError: string | undefined;
}

interface ListResponse<T> {
  readonly metadata: { readonly resourceVersion: string; readonly continue?: string };
  readonly items: readonly T[];
}

interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: ObjectWithMeta | { readonly code?: number; readonly reason?: string; readonly message?: string };
}

class GoneError extends Error {}

export function objectKey(meta: ObjectWithMeta['metadata']): string {
  return meta.namespace ? `${meta.namespace}/${meta.name}` : meta.name;
}

export class ListWatch<T extends ObjectWithMeta> {
  readonly #api: KubeApi;
  readonly #options: ListWatchOptions<T>;
  readonly #store = new Map<string, T>();
  readonly #closed = new AbortController();
  #watchAbort: AbortController | undefined;
  #resourceVersion = '';
  #needList = true;
  #synced = false;
  /** Watchdog clock: reset when a watch starts, so a fresh watch gets its full quiet period. */
  #lastEventAt = -Infinity;
  /** When the server last told us anything (a list or a watch event), for status and health. */
  #lastHeardAt = -Infinity;
  #relists = 0;
  #restarts = 0;
  #lastError: string | undefined;
  #resolveSynced!: () => void;
  readonly #loop: Promise<void>;
  #watchdog: NodeJS.Timeout;

  /** Resolves after the first complete list has been delivered through onChange. */
  readonly synced: Promise<void>;

  constructor(api: KubeApi, options: ListWatchOptions<T>) {
    this.#api = api;
    this.#options = options;
    this.synced = new Promise((resolve) => (this.#resolveSynced = resolve));
    const inactivity = options.inactivityMs ?? 120_000;
    this.#watchdog = setInterval(
      () => {
        if (this.#watchAbort && performance.now() - this.#lastEventAt > inactivity) this.#watchAbort.abort();
      },
      Math.min(inactivity, 5_000),
    );
    this.#watchdog.unref();
    this.#loop = this.#run();
  }

  status(): ListWatchStatus {
    return {
      path: this.#options.path,
      synced: this.#synced,
      resourceVersion: this.#resourceVersion,
      objects: this.#store.size,
      lastEventAgeMs: performance.now() - this.#lastHeardAt,
      relists: this.#relists,
      restarts: this.#restarts,
      lastError: this.#lastError,
    };
  }

  list(): T[] {
    return [...this.#store.values()];
  }

  async close(): Promise<void> {
    clearInterval(this.#watchdog);
    this.#closed.abort();
    this.#watchAbort?.abort();
    await this.#loop;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#closed.signal.aborted) {
      try {
        if (this.#needList) await this.#list();
        await this.#watch();
        failures = 0; // a watch that ended cleanly (server timeout) resumes at once
      } catch (error) {
        if (this.#closed.signal.aborted) break;
        if (error instanceof GoneError || (error instanceof KubeApiError && error.status === 410)) {
          this.#needList = true;
          continue; // the resourceVersion is too old: re-list right away
        }
        // As client-go's reflector does: after a broken watch, list again before watching. The
        // list is diffed against the store, so what changed while we were away (deletions
        // included) arrives as ordinary events, whatever the server's watch history still holds.
        this.#needList = true;
        failures++;
        this.#restarts++;
        this.#lastError = error instanceof Error ? error.message : String(error);
        const base = this.#options.backoffBaseMs ?? 500;
        const cap = this.#options.backoffMaxMs ?? 30_000;
        const delay = Math.min(cap, base * 2 ** Math.min(20, failures - 1)) * (0.5 + Math.random() / 2);
        try {
          await sleep(delay, undefined, { signal: this.#closed.signal });
        } catch {
          break;
        }
      }
    }
  }

  #query(extra: Record<string, string>): string {
    const params = new URLSearchParams(extra);
    if (this.#options.fieldSelector) params.set('fieldSelector', this.#options.fieldSelector);
    if (this.#options.labelSelector) params.set('labelSelector', this.#options.labelSelector);
    return `${this.#options.path}?${params.toString()}`;
  }

  async #list(): Promise<void> {
    const fresh = new Map<string, T>();
    let continueToken = '';
    let resourceVersion: string;
    do {
      const page = await this.#api.getJson<ListResponse<ObjectWithMeta>>(
        this.#query({
          limit: String(this.#options.pageSize ?? 500),
          ...(continueToken ? { continue: continueToken } : {}),
        }),
        this.#closed.signal,
      );
      for (const raw of page.items) {
        const item = this.#project(raw);
        fresh.set(objectKey(item.metadata), item);
      }
      continueToken = page.metadata.continue ?? '';
      resourceVersion = page.metadata.resourceVersion;
    } while (continueToken);
    // Deliver the difference against what we held, so a re-list after a long outage reports
    // deletions that happened while we were away.
    for (const [key, previous] of this.#store) {
      if (!fresh.has(key)) this.#emit(key, previous, undefined);
    }
    for (const [key, current] of fresh) {
      const previous = this.#store.get(key);
      // Unchanged objects (same resourceVersion) are not news: a re-list after a blip stays quiet.
      if (
        previous?.metadata.resourceVersion !== undefined &&
        previous.metadata.resourceVersion === current.metadata.resourceVersion
      )
        continue;
      this.#emit(key, previous, current);
    }
    this.#resourceVersion = resourceVersion;
    this.#needList = false;
    this.#relists++;
    this.#lastEventAt = this.#lastHeardAt = performance.now();
    if (!this.#synced) {
      this.#synced = true;
      this.#resolveSynced();
    }
  }

  async #watch(): Promise<void> {
    const abort = new AbortController();
    this.#watchAbort = abort;
    const onClose = (): void => abort.abort();
    this.#closed.signal.addEventListener('abort', onClose);
    this.#lastEventAt = performance.now();
    try {
      const path = this.#query({
        watch: '1',
        allowWatchBookmarks: 'true',
        resourceVersion: this.#resourceVersion,
        timeoutSeconds: String(this.#options.watchTimeoutSeconds ?? 300),
      });
      for await (const raw of this.#api.watchLines(path, abort.signal)) {
        this.#lastEventAt = this.#lastHeardAt = performance.now();
        this.#apply(raw as WatchEvent);
      }
    } catch (error) {
      // The watchdog aborts a silent watch: restart it quietly, as a server timeout would.
      if (abort.signal.aborted && !this.#closed.signal.aborted) {
        this.#restarts++;
        return;
      }
      throw error;
    } finally {
      this.#closed.signal.removeEventListener('abort', onClose);
      this.#watchAbort = undefined;
    }
  }

  #apply(event: WatchEvent): void {
    if (event.type === 'ERROR') {
      const status = event.object as { code?: number; message?: string };
      if (status.code === 410) throw new GoneError(status.message ?? 'resourceVersion too old');
      throw new Error(`watch ${this.#options.path}: ${status.code ?? '?'} ${status.message ?? ''}`);
    }
    const raw = event.object as ObjectWithMeta;
    if (raw.metadata.resourceVersion) this.#resourceVersion = raw.metadata.resourceVersion;
    if (event.type === 'BOOKMARK') return;
    const object = this.#project(raw);
    const key = objectKey(object.metadata);
    const previous = this.#store.get(key);
    this.#emit(key, previous, event.type === 'DELETED' ? undefined : object);
  }

  #project(raw: ObjectWithMeta): T {
    return this.#options.project ? this.#options.project(raw) : (raw as T);
  }

  #emit(key: string, previous: T | undefined, current: T | undefined): void {
    if (current) this.#store.set(key, current);
    else this.#store.delete(key);
    if (previous === undefined && current === undefined) return;
    this.#options.onChange({ previous, current });
  }
}
