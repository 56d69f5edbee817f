// Keeps this node's routes to the other nodes' pod CIDRs in step with the Node objects the source
// reports (native routing or the VXLAN overlay: src/agent/routes.ts). Changes arrive in bursts (a
// re-list reports every Node), so they are coalesced: at most one sync runs, and one more follows
// if anything changed meanwhile.
import type { Logger } from 'pino';
import { syncNodeRoutes, type NodeRoutingInfo, type RoutingMode } from './routes.ts';
import type { ModelChange } from '../model/service-model.ts';
import type { Node } from '../model/k8s.ts';

export type PodRoutingMode = RoutingMode | 'off';

export interface NodeRoutesOptions {
  readonly self: string;
  readonly mode: RoutingMode;
  readonly log: Logger;
  /** Test hook: where to program; the agent's own namespace when undefined. */
  readonly netnsPath?: string;
}

/** The routing facts of a Node object, or undefined when it has no pod CIDR or no address yet. */
export function routingInfo(node: Node): NodeRoutingInfo | undefined {
  const podCIDRs = node.spec?.podCIDRs?.length ? node.spec.podCIDRs : node.spec?.podCIDR ? [node.spec.podCIDR] : [];
  const addresses = (node.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address);
  if (podCIDRs.length === 0 || addresses.length === 0) return undefined;
  return { name: node.metadata.name, addresses, podCIDRs };
}

export class NodeRoutes {
  readonly #options: NodeRoutesOptions;
  readonly #nodes = new Map<string, NodeRoutingInfo>();
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #syncs = 0;
  #lastError: string | undefined;

  constructor(options: NodeRoutesOptions) {
    this.#options = options;
  }

  onChange(change: ModelChange): void {
    if (change.kind !== 'Node' || this.#closed) return;
    const before = change.previous ? routingInfo(change.previous) : undefined;
    const after = change.current ? routingInfo(change.current) : undefined;
    // Status heartbeats and label edits change nothing we route by.
    if (!before && !after) return;
    if (change.previous && JSON.stringify(before) === JSON.stringify(after)) return;
    if (change.previous) this.#nodes.delete(change.previous.metadata.name);
    if (after) this.#nodes.set(after.name, after);
    this.#schedule();
  }

  /** Resolves when no sync is running or pending (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  status(): { readonly mode: RoutingMode; readonly nodes: number; readonly syncs: number; readonly lastError?: string } {
    return {
      mode: this.#options.mode,
      nodes: this.#nodes.size,
      syncs: this.#syncs,
      ...(this.#lastError === undefined ? {} : { lastError: this.#lastError }),
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.settled();
  }

  #schedule(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
      if (this.#again && !this.#closed) {
        this.#again = false;
        this.#schedule();
      }
    });
  }

  async #run(): Promise<void> {
    const { self, mode, log, netnsPath } = this.#options;
    // VXLAN needs our own underlay address; wait for our own Node.
    if (mode === 'vxlan' && !this.#nodes.has(self)) return;
    try {
      const result = await syncNodeRoutes(netnsPath, [...this.#nodes.values()], mode, { self });
      this.#syncs++;
      this.#lastError = undefined;
      log.debug({ mode, nodes: this.#nodes.size, ...result }, 'node routes synced');
    } catch (err) {
      this.#lastError = (err as Error).message;
      log.warn({ err, mode }, 'node routes sync failed; retrying in 5 s');
      setTimeout(() => {
        if (!this.#closed) this.#schedule();
      }, 5000).unref();
    }
  }
}
