// Where the agent's changes come from: the manifest directory (standalone) or the API server. Made
// before the parts that read it (the observer asks it for Pods) and opened once every consumer
// exists; each change then goes to every consumer in order, one fan-out for both sources.
import type { ModelChange } from '../model/service-model.ts';
import type { Pod } from '../model/k8s.ts';
import type { ServiceWriter } from '../datapath/service-writer.ts';
import { ManifestSource, liveAllocationsFrom } from '../sources/manifest/index.ts';
import { KubeSource } from '../sources/kube/source.ts';

export interface ChangeConsumer {
  onChange(change: ModelChange): void;
}

export interface AgentSourceOptions {
  readonly source: 'standalone' | 'kubernetes';
  readonly manifests: string;
  readonly stateDir: string;
  /** Standalone: how long a changed file must be quiet before it is read (its last complete version serves meanwhile). */
  readonly manifestSettleMs?: number;
  /** Standalone: larger manifest files are refused by name, unread. */
  readonly manifestMaxFileBytes?: number;
  readonly nodeName: string;
  readonly kubeconfig?: string;
  readonly server?: string;
  readonly watchPods?: boolean;
}

export class AgentSource {
  readonly name = 'source';
  readonly #options: AgentSourceOptions;
  #source: ManifestSource | KubeSource | undefined;

  constructor(options: AgentSourceOptions) {
    this.#options = options;
  }

  /** Starts watching; resolves once the source has listed everything (the first sync may run). */
  open(consumers: readonly ChangeConsumer[], lb: ServiceWriter): Promise<void> {
    const onChange = (change: ModelChange): void => {
      for (const c of consumers) c.onChange(change);
    };
    const o = this.#options;
    if (o.source === 'kubernetes') {
      const kube = KubeSource.connect({
        nodeName: o.nodeName,
        ...(o.kubeconfig ? { kubeconfig: o.kubeconfig } : {}),
        ...(o.server ? { server: o.server } : {}),
        watchLocalPods: o.watchPods ?? true,
        onChange,
      });
      this.#source = kube;
      return kube.ready;
    }
    const manifests = ManifestSource.open(o.manifests, {
      stateDir: o.stateDir,
      ...(o.manifestSettleMs !== undefined ? { settleMs: o.manifestSettleMs } : {}),
      ...(o.manifestMaxFileBytes !== undefined ? { maxFileBytes: o.manifestMaxFileBytes } : {}),
      // What the pinned maps serve now: a lost or corrupt allocations.json is rebuilt from it, and
      // no live VIP or NodePort is ever handed to another Service.
      liveAllocations: liveAllocationsFrom(lb.readBack(), (id) => lb.backend(id)?.address),
      onChange,
    });
    this.#source = manifests;
    return manifests.initialListDone;
  }

  /** Standalone: every Pod of the manifests; Kubernetes: this node's Pods; none before open. */
  pods(): readonly Pod[] {
    return this.#source?.pods() ?? [];
  }

  status(): object {
    return this.#source?.status() ?? {};
  }

  /** Kubernetes: per watched resource (API path's last segment), seconds since its watch last heard anything. */
  eventAges(): Record<string, number> | undefined {
    if (!(this.#source instanceof KubeSource)) return undefined;
    const ages: Record<string, number> = {};
    for (const w of this.#source.status().watches) ages[w.path.split('/').pop()!] = Math.round(w.lastEventAgeMs / 100) / 10;
    return ages;
  }

  async stop(): Promise<void> {
    await this.#source?.close();
  }
}
