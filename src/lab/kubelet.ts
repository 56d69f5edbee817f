// A kubelet for lab nodes, just enough of one for the real control plane to treat the lab as a
// cluster: it registers the node as a Node (addresses, zone, pod CIDRs, Ready), watches the Pods
// bound to it, gives each a network namespace and its network through bin/ferry-cni (the lab's pod
// driver, invoked as a runtime invokes it), runs the lab echo server on the container ports, and
// reports podIP(s) and the Ready condition — so the real EndpointSlice controller builds the
// slices Ferry consumes. A pod annotated `ferry.dev/ready: "false"` reports not Ready (a readiness
// flip for tests). Deletion is graceful: the pod keeps serving through its grace period (capped),
// then the workload stops, the network is released (CNI DEL), and the Pod object is removed.
import { setTimeout as sleep } from 'node:timers/promises';
import { logger } from '../common/log.ts';
import { run } from '../common/run.ts';
import { FerryError } from '../common/errors.ts';
import type { Pod } from '../model/k8s.ts';
import { KubeClient } from '../sources/kube/client.ts';
import { ListWatch } from '../sources/kube/list-watch.ts';
import type { Lab } from './lab.ts';
import type { LabProcess } from './exec.ts';
import type { LabNode, LabPod } from './types.ts';
import { kubeNodeName } from './agents.ts';

export const READY_ANNOTATION = 'ferry.dev/ready';
const MAX_GRACE_MS = 2000;

export interface LabKubeletOptions {
  readonly kubeconfig: string;
  /** The kubectl binary used for writes (Node, pod status, final delete). */
  readonly kubectl: string;
  readonly zone?: string;
}

interface Running {
  readonly labPod: LabPod;
  readonly server: LabProcess;
  ready: boolean;
  terminating: boolean;
}

type KubePod = Pod & {
  readonly metadata: Pod['metadata'] & {
    readonly deletionTimestamp?: string;
    readonly deletionGracePeriodSeconds?: number;
  };
};

export class LabKubelet implements AsyncDisposable {
  readonly #lab: Lab;
  readonly #node: LabNode;
  readonly #options: LabKubeletOptions;
  readonly #pods = new Map<string, Running>();
  readonly #log;
  #watch: ListWatch<KubePod> | undefined;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(lab: Lab, node: LabNode, options: LabKubeletOptions) {
    this.#lab = lab;
    this.#node = node;
    this.#options = options;
    this.#log = logger('kubelet', { node: kubeNodeName(node) });
  }

  get nodeName(): string {
    return kubeNodeName(this.#node);
  }

  /** Registers the Node and starts serving the Pods bound to it. */
  static async start(lab: Lab, node: LabNode, options: LabKubeletOptions): Promise<LabKubelet> {
    const k = new LabKubelet(lab, node, options);
    await k.#register();
    const api = KubeClient.fromOptions({ kubeconfig: options.kubeconfig });
    k.#watch = new ListWatch<KubePod>(api, {
      path: '/api/v1/pods',
      fieldSelector: `spec.nodeName=${k.nodeName}`,
      onChange: ({ current, previous }) => {
        const key = `${(current ?? previous)!.metadata.namespace ?? 'default'}/${(current ?? previous)!.metadata.name}`;
        k.#queue = k.#queue
          .then(() => k.#reconcile(key, current))
          .catch((err: unknown) => k.#log.error({ err, pod: key }, 'pod sync failed'));
      },
    });
    await k.#watch.synced;
    return k;
  }

  /** The lab pod serving a Pod (namespace/name), once it runs. */
  labPod(key: string): LabPod | undefined {
    return this.#pods.get(key)?.labPod;
  }

  /** Pod (namespace/name) by the lab pod name its echo server reports. */
  podByLabName(labName: string): string | undefined {
    for (const [key, r] of this.#pods) if (r.labPod.name === labName) return key;
    return undefined;
  }

  async #kubectl(args: readonly string[], input?: string): Promise<string> {
    const r = await run(this.#options.kubectl, ['--kubeconfig', this.#options.kubeconfig, ...args], {
      allowFailure: true,
      ...(input === undefined ? {} : { input }),
    });
    if (r.code !== 0)
      throw new FerryError(
        'FERRY_E_LAB',
        `kubelet ${this.nodeName}: kubectl ${args.slice(0, 3).join(' ')}: ${r.stderr.trim()}`,
      );
    return r.stdout;
  }

  async #register(): Promise<void> {
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: this.nodeName,
        labels: {
          'kubernetes.io/hostname': this.nodeName,
          'topology.kubernetes.io/zone': this.#options.zone ?? `zone-${this.#node.index}`,
        },
      },
      spec: { podCIDR: this.#node.podCidrV4, podCIDRs: [this.#node.podCidrV4, this.#node.podCidrV6] },
    };
    await this.#kubectl(['apply', '-f', '-'], JSON.stringify(node));
    const now = new Date().toISOString();
    const status = {
      addresses: [
        { type: 'InternalIP', address: this.#node.ipv4 },
        { type: 'InternalIP', address: this.#node.ipv6 },
        { type: 'Hostname', address: this.nodeName },
      ],
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'KubeletReady',
          message: 'lab kubelet',
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
      ],
    };
    await this.#kubectl([
      'patch',
      'node',
      this.nodeName,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status }),
    ]);
  }

  async #reconcile(key: string, pod: KubePod | undefined): Promise<void> {
    if (this.#closed) return;
    const running = this.#pods.get(key);
    if (!pod) {
      if (running) await this.#stop(key, running);
      return;
    }
    const [namespace, name] = key.split('/') as [string, string];
    if (pod.metadata.deletionTimestamp) {
      if (running?.terminating) return;
      if (running) {
        running.terminating = true;
        // Graceful: keep serving through the grace period (the controller marks the endpoint
        // terminating meanwhile), then stop.
        const grace = Math.min(MAX_GRACE_MS, (pod.metadata.deletionGracePeriodSeconds ?? 30) * 1000);
        await sleep(grace);
        await this.#stop(key, running);
      }
      await this.#kubectl([
        'delete',
        'pod',
        name,
        '-n',
        namespace,
        '--grace-period=0',
        '--force',
        '--wait=false',
      ]).catch(() => undefined);
      return;
    }
    const ready = pod.metadata.annotations?.[READY_ANNOTATION] !== 'false';
    if (running) {
      if (running.ready !== ready) {
        running.ready = ready;
        await this.#reportStatus(namespace, name, running);
      }
      return;
    }
    const ports = (pod.spec?.containers ?? []).flatMap((c) => c.ports ?? []);
    const tcp = ports.filter((p) => (p.protocol ?? 'TCP') === 'TCP').map((p) => p.containerPort);
    const udp = ports.filter((p) => p.protocol === 'UDP').map((p) => p.containerPort);
    const labPod = await this.#lab.addPod(this.#node.index);
    const server = await this.#lab.startEchoServer(labPod, { tcp: tcp.length ? tcp : [7000], udp, http: [] });
    const fresh: Running = { labPod, server, ready, terminating: false };
    this.#pods.set(key, fresh);
    await this.#reportStatus(namespace, name, fresh);
  }

  async #reportStatus(namespace: string, name: string, r: Running): Promise<void> {
    const now = new Date().toISOString();
    const cond = (type: string, ok: boolean): object => ({
      type,
      status: ok ? 'True' : 'False',
      lastTransitionTime: now,
    });
    const status = {
      phase: 'Running',
      hostIP: this.#node.ipv4,
      hostIPs: [{ ip: this.#node.ipv4 }, { ip: this.#node.ipv6 }],
      podIP: r.labPod.ipv4,
      podIPs: [{ ip: r.labPod.ipv4 }, { ip: r.labPod.ipv6 }],
      startTime: now,
      conditions: [
        cond('PodScheduled', true),
        cond('Initialized', true),
        cond('ContainersReady', r.ready),
        cond('Ready', r.ready),
      ],
    };
    await this.#kubectl([
      'patch',
      'pod',
      name,
      '-n',
      namespace,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status }),
    ]);
  }

  async #stop(key: string, r: Running): Promise<void> {
    this.#pods.delete(key);
    await r.server.kill();
    await this.#lab.removePod(r.labPod);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#closed = true;
    await this.#watch?.close();
    await this.#queue;
  }
}
