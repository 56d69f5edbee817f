// A small real cluster on one machine: the test control plane, a lab whose nodes run the lab
// kubelet (Pods get their network from ferry-cni) and a Ferry agent in Kubernetes mode each. The
// agents and kubelets reach the API server through loopback bridges, so nothing of the lab
// touches the root network namespace.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { createLab, target, type Lab } from '../../src/lab/lab.ts';
import { bridgeLoopback, type LoopbackBridge } from '../../src/lab/loopback-bridge.ts';
import { startNodeAgent, type NodeAgent } from '../../src/lab/agents.ts';
import { LabKubelet } from '../../src/lab/kubelet.ts';
import type { ProbeReport } from '../../src/lab/tools/protocol.ts';
import { startControlPlane, type ControlPlane } from './control-plane.ts';

const RBAC = fileURLToPath(new URL('../../deploy/kubernetes/rbac.yaml', import.meta.url));

export interface ClusterProbe {
  /** Pod name → answers. */
  readonly backends: Record<string, number>;
  readonly errors: Record<string, number>;
  readonly ok: number;
  /** The client addresses the backends saw (without ports). */
  readonly seenAs: readonly string[];
}

export interface LabCluster extends AsyncDisposable {
  readonly cp: ControlPlane;
  readonly lab: Lab;
  readonly kubelets: readonly LabKubelet[];
  readonly agents: NodeAgent[];
  apply(docs: readonly object[]): Promise<void>;
  kubectl(args: readonly string[]): Promise<string>;
  /** Probes from a Pod (namespace/name) and names the backends by Pod. */
  probe(
    from: string,
    address: string,
    port: number,
    options?: { count?: number; timeoutMs?: number; intervalMs?: number },
  ): Promise<ClusterProbe>;
  /** Starts (or restarts) the Ferry agent of node i (1-based). */
  startAgent(i: number): Promise<NodeAgent>;
  podNameOf(labPodName: string): string;
}

export async function eventually<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (error) {
      last = error;
    }
    if (performance.now() > deadline)
      throw new Error(`timed out: ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(250);
  }
}

export async function startLabCluster(nodes = 2): Promise<LabCluster> {
  const cp = await startControlPlane();
  let lab: Lab | undefined;
  const bridges: LoopbackBridge[] = [];
  const kubelets: LabKubelet[] = [];
  const agents: NodeAgent[] = [];
  const close = async (): Promise<void> => {
    for (const k of kubelets) await Promise.resolve(k[Symbol.asyncDispose]()).catch(() => undefined);
    for (const b of bridges) await Promise.resolve(b[Symbol.asyncDispose]()).catch(() => undefined);
    await lab?.down().catch(() => undefined);
    await cp.stop();
  };
  try {
    lab = await createLab({ nodes, podsPerNode: 0 });
    const port = Number(new URL(cp.server).port);
    for (const n of lab.nodes) bridges.push(await bridgeLoopback(lab, n, { remotePort: port }));
    for (const n of lab.nodes)
      kubelets.push(
        await LabKubelet.start(lab, n, { kubeconfig: cp.kubeconfig, kubectl: join(cp.binDir, 'kubectl') }),
      );
    // The agents run as the DaemonSet's ServiceAccount under deploy/kubernetes/rbac.yaml, so
    // every test here also proves that RBAC grants what the agent needs.
    const rbac = await cp.kubectl(['apply', '-f', RBAC], { allowFailure: true });
    if (rbac.code !== 0) throw new Error(`kubectl apply ${RBAC}: ${rbac.stderr}`);
    const agentKubeconfig = await cp.serviceAccountKubeconfig('kube-system', 'ferry');
    const theLab = lab;
    const startAgent = async (i: number): Promise<NodeAgent> => {
      const agent = await startNodeAgent(theLab, theLab.node(i), {
        manifests: '/nonexistent',
        extraArgs: ['--source', 'kubernetes', '--kubeconfig', agentKubeconfig],
        readyTimeoutMs: 60_000,
      });
      agents[i - 1] = agent;
      return agent;
    };
    for (let i = 1; i <= nodes; i++) await startAgent(i);
    const podNameOf = (labPodName: string): string => {
      for (const k of kubelets) {
        const key = k.podByLabName(labPodName);
        if (key) return key.split('/')[1]!;
      }
      return labPodName;
    };
    return {
      cp,
      lab,
      kubelets,
      agents,
      startAgent,
      podNameOf,
      apply: async (docs) => {
        const r = await cp.kubectl(['apply', '-f', '-'], {
          input: docs.map((d) => stringify(d)).join('---\n'),
        });
        if (r.code !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
      },
      kubectl: async (args) => {
        const r = await cp.kubectl(args);
        if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
        return r.stdout;
      },
      probe: async (from, address, p, options = {}) => {
        const key = from.includes('/') ? from : `default/${from}`;
        const host = from === 'client' ? 'client' : kubelets.map((k) => k.labPod(key)).find((x) => x);
        if (!host) throw new Error(`probe: pod ${key} is not running on any lab kubelet`);
        const report: ProbeReport = await theLab.probe(host, target(address, p), {
          count: options.count ?? 12,
          timeoutMs: options.timeoutMs ?? 1500,
          ...(options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs }),
        });
        const s = report.summaries[0]!;
        const backends: Record<string, number> = {};
        for (const [name, n] of Object.entries(s.backends))
          backends[podNameOf(name)] = (backends[podNameOf(name)] ?? 0) + n;
        const seenAs = new Set(
          report.attempts.flatMap((a) => (a.seenAs ? [a.seenAs.replace(/^\[?(.*?)\]?:\d+$/, '$1')] : [])),
        );
        return { backends, errors: { ...s.errors }, ok: s.ok, seenAs: [...seenAs] };
      },
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
