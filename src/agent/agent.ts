// The agent's reconcile loop: changes from a source go into the model; a bounded-frequency runner
// drives syncs; each sync is a short list of named steps. The first sync adopts what the pinned
// maps hold and reconciles the difference without flushing; only then is the agent ready.
import type { Logger } from '../common/log.ts';
import type { InvalidObjectError } from '../common/errors.ts';
import type { Frontend, FrontendDiff, FrontendTable } from '../model/frontend.ts';
import { ServiceModel, type ModelChange, type ServiceModelOptions } from '../model/service-model.ts';
import type { Change, PolicyChangeKind } from '../model/change.ts';
import { PolicyState, type PolicyStateStatus } from './policy-state.ts';
import { SyncRunner, type SyncOutcome, type SyncRunnerOptions } from './sync-runner.ts';

/**
 * What the agent needs of a datapath: ServiceWriter provides it for the load-balancing maps, the
 * Datapath facade (datapath.ts) for those and the north-south edge. `table` is the whole desired
 * state, for the parts that are written from it rather than from the diff. A throw fails the sync
 * and makes the next one full.
 */
export interface DatapathWriter {
  readBack(): unknown;
  reconcile(desired: Iterable<Frontend>, table: FrontendTable): DatapathResult | Promise<DatapathResult>;
  apply(diff: FrontendDiff, table: FrontendTable): DatapathResult | Promise<DatapathResult>;
}

export type SyncListener = (record: SyncRecord) => void;

export interface DatapathResult {
  readonly upserted: number;
  readonly removed: number;
  readonly failed: readonly { readonly frontend: string; readonly error: Error }[];
  readonly orphansRemoved: number;
}

export interface AgentOptions extends ServiceModelOptions {
  readonly writer: DatapathWriter;
  readonly log: Logger;
  readonly runner?: Partial<SyncRunnerOptions>;
  /** Called after every sync with its record (metrics, status file). */
  readonly onSync?: (record: SyncRecord) => void;
}

export interface SyncRecord {
  readonly ok: boolean;
  readonly full: boolean;
  readonly at: number; // epoch ms
  readonly durationMs: number;
  /** From the first change the sync carried to the maps being updated (kube-proxy's network programming latency). */
  readonly programmingLatencyMs: number | undefined;
  readonly upserted: number;
  readonly removed: number;
  readonly orphansRemoved: number;
  readonly failedFrontends: readonly string[];
  readonly error?: string;
}

export interface AgentStatus {
  readonly ready: boolean;
  readonly syncs: number;
  readonly failedSyncs: number;
  readonly consecutiveFailures: number;
  readonly lastSync: SyncRecord | undefined;
  readonly lastSuccessAt: number | undefined;
  readonly frontends: number;
  readonly services: number;
  /** Services, slices and NetworkPolicies refused, each naming object and field; their previous version is in force. */
  readonly invalidObjects: readonly { readonly object: string; readonly field: string; readonly message: string }[];
  /** What NetworkPolicy knows (not enforced yet). */
  readonly policy: PolicyStateStatus;
  readonly warnings: readonly string[];
  /** Frontends the last sync could not program (e.g. a full map), `key: error`; empty when all are in. */
  readonly degraded: readonly string[];
}

const DEFAULT_RUNNER: SyncRunnerOptions = { minIntervalMs: 20, maxIntervalMs: 60_000, retryBaseMs: 200, maxBackoffMs: 10_000 };

export class Agent {
  readonly #model: ServiceModel;
  readonly #policy = new PolicyState();
  readonly #writer: DatapathWriter;
  readonly #log: Logger;
  readonly #runner: SyncRunner;
  readonly #listeners: SyncListener[] = [];
  #ready = false;
  #adopted = false;
  #syncs = 0;
  #failedSyncs = 0;
  #consecutiveFailures = 0;
  #lastSync: SyncRecord | undefined;
  #lastSuccessAt: number | undefined;
  #firstPendingAt: number | undefined;
  #warnings: readonly string[] = [];
  #degraded: readonly string[] = [];
  #reportedErrors = new Set<string>();
  readonly #readiness = Promise.withResolvers<void>();

  constructor(options: AgentOptions) {
    this.#model = new ServiceModel(options);
    this.#writer = options.writer;
    this.#log = options.log;
    if (options.onSync) this.#listeners.push(options.onSync);
    this.#runner = new SyncRunner(() => this.#sync(), { ...DEFAULT_RUNNER, ...options.runner }, (o) => this.#outcome(o));
  }

  /** Feed for every source. Cheap: records the change and asks for a sync. */
  onChange(change: ModelChange): void {
    if (change.kind === 'Node') this.#policy.apply(change);
    if (!this.#model.apply(change)) {
      this.#reportInvalid();
      return;
    }
    // kube-proxy's network programming latency starts at the EndpointSlice controller's trigger
    // time (the Pod or Service change it reacted to), when the slice carries one.
    const seen = Math.min(performance.now(), triggerTime(change) ?? Infinity);
    this.#firstPendingAt = this.#firstPendingAt === undefined ? seen : Math.min(this.#firstPendingAt, seen);
    if (this.#adopted) this.#runner.request();
  }

  /** Feed for the policy kinds, which never reach the Service model. */
  onPolicyChange(change: Change<PolicyChangeKind>): void {
    this.#policy.apply(change);
    if (change.kind === 'NetworkPolicy') this.#reportInvalid();
  }

  /** Epoch ms of the oldest change not yet in the maps; undefined when the maps are current. */
  pendingSince(): number | undefined {
    return this.#firstPendingAt === undefined ? undefined : Date.now() - (performance.now() - this.#firstPendingAt);
  }

  /** Call once every source has listed: adopts the pinned state, reconciles, and becomes ready. */
  async start(): Promise<SyncOutcome> {
    this.#model.markFull();
    const outcome = await this.#runner.runNow();
    if (!outcome.ok) this.#log.error({ err: outcome.error }, 'first sync failed; retrying');
    return outcome;
  }

  /** Also told every sync's record, after those before it (metrics, then the status file). */
  addSyncListener(listener: SyncListener): void {
    this.#listeners.push(listener);
  }

  /** Runs a sync now and resolves with its outcome: a part that joined the datapath is written. */
  resync(): Promise<SyncOutcome> {
    return this.#runner.runNow();
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** Resolves when the agent is ready (the first sync reached the maps). A promise, not a poll:
   * an agent that never becomes ready must still let the process exit on SIGTERM. */
  whenReady(): Promise<void> {
    return this.#readiness.promise;
  }

  model(): ServiceModel {
    return this.#model;
  }

  policy(): PolicyState {
    return this.#policy;
  }

  status(): AgentStatus {
    return {
      ready: this.#ready,
      syncs: this.#syncs,
      failedSyncs: this.#failedSyncs,
      consecutiveFailures: this.#consecutiveFailures,
      lastSync: this.#lastSync,
      lastSuccessAt: this.#lastSuccessAt,
      frontends: this.#model.table().frontends.size,
      services: this.#model.services().length,
      invalidObjects: this.#invalid().map((e) => ({ object: e.object, field: e.field, message: e.message })),
      policy: this.#policy.status(),
      warnings: this.#warnings,
      degraded: this.#degraded,
    };
  }

  async stop(): Promise<void> {
    await this.#runner.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  // ---- the sync, as named steps ----

  async #sync(): Promise<void> {
    const started = performance.now();
    const carriedSince = this.#firstPendingAt;
    this.#firstPendingAt = undefined;
    try {
      this.#adoptOnce();
    } catch (error) {
      // Nothing reached the maps: every change is still waiting.
      this.#firstPendingAt ??= carriedSince;
      throw error;
    }
    const computed = this.#model.sync();
    this.#warnings = computed.warnings;
    const table = this.#model.table();
    let result: DatapathResult;
    try {
      result = await (computed.full ? this.#writer.reconcile(table.frontends.values(), table) : this.#writer.apply(computed.diff, table));
    } catch (error) {
      // The diff is spent and the maps may hold part of it: only a full sync brings them back in step.
      this.#model.markFull();
      this.#firstPendingAt ??= carriedSince;
      throw error;
    }
    const record: SyncRecord = {
      ok: result.failed.length === 0,
      full: computed.full,
      at: Date.now(),
      durationMs: performance.now() - started,
      programmingLatencyMs: carriedSince === undefined ? undefined : performance.now() - carriedSince,
      upserted: result.upserted,
      removed: result.removed,
      orphansRemoved: result.orphansRemoved,
      failedFrontends: result.failed.map((f) => `${f.frontend}: ${f.error.message}`),
    };
    this.#degraded = record.failedFrontends;
    // Every other frontend is in the maps, so the agent is ready, degraded (as Cilium keeps a node
    // serving when one Service does not fit): a full map would otherwise keep it never ready. The
    // failures are listed in the status and /healthz rather than counted as pending changes, which
    // would take the whole node out of its load balancers for one Service.
    this.#becomeReady();
    this.#record(record);
    if (result.failed.length > 0) {
      // The model moved on, the maps did not: only a full sync brings them back in step.
      this.#model.markFull();
      throw new AggregateError(result.failed.map((f) => f.error), `${result.failed.length} frontend(s) not programmed`);
    }
  }

  #becomeReady(): void {
    if (this.#ready) return;
    this.#ready = true;
    this.#readiness.resolve();
  }

  #adoptOnce(): void {
    if (this.#adopted) return;
    this.#writer.readBack();
    this.#adopted = true;
  }

  #record(record: SyncRecord): void {
    this.#syncs++;
    this.#lastSync = record;
    if (record.ok) {
      this.#lastSuccessAt = record.at;
      this.#consecutiveFailures = 0;
    }
    this.#reportInvalid();
    this.#emit(record);
    this.#log.debug({ sync: record }, 'sync');
  }

  #outcome(outcome: SyncOutcome): void {
    if (outcome.ok) return;
    this.#failedSyncs++;
    this.#consecutiveFailures = outcome.failures;
    this.#log.warn({ err: outcome.error, failures: outcome.failures }, 'sync failed; the next sync is full');
    if (!this.#lastSync || this.#lastSync.ok) {
      this.#emit({
        ok: false,
        full: true,
        at: Date.now(),
        durationMs: outcome.durationMs,
        programmingLatencyMs: undefined,
        upserted: 0,
        removed: 0,
        orphansRemoved: 0,
        failedFrontends: [],
        error: outcome.error instanceof Error ? outcome.error.message : String(outcome.error),
      });
    }
  }

  #emit(record: SyncRecord): void {
    for (const listener of this.#listeners) listener(record);
  }

  #invalid(): InvalidObjectError[] {
    return [...this.#model.errors(), ...this.#policy.errors()];
  }

  #reportInvalid(): void {
    const errors = this.#invalid();
    const now = new Set(errors.map((e) => e.message));
    for (const e of errors) if (!this.#reportedErrors.has(e.message)) this.#log.error({ object: e.object, field: e.field }, e.message);
    this.#reportedErrors = now;
  }
}

export const TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';

/** The slice's trigger time on the performance.now() clock, if it has a valid one in the past. */
function triggerTime(change: ModelChange): number | undefined {
  if (change.kind !== 'EndpointSlice') return undefined;
  const text = change.current?.metadata.annotations?.[TRIGGER_TIME_ANNOTATION];
  if (!text) return undefined;
  const at = Date.parse(text);
  const age = Date.now() - at;
  // A clock skewed into the future, or a stale annotation copied along, would distort the metric.
  if (!Number.isFinite(at) || age < 0 || age > 3_600_000) return undefined;
  return performance.now() - age;
}
