// The demo `make demo` runs: a 3-node lab, one Ferry agent per node on the standalone source with
// the sample manifests, the manifests' pods served by echo servers in lab pods, and requests
// through the Service VIPs from pods on every node, printing which backend answered each.
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { Pod } from '../model/k8s.ts';
import { createLab, target, type Lab } from './lab.ts';
import { ferryOnNode, startNodeAgent } from './agents.ts';
import type { LabPod } from './types.ts';

export const EXAMPLE_MANIFESTS = fileURLToPath(new URL('../../deploy/standalone-example', import.meta.url));

export interface DemoOptions {
  readonly keep: boolean;
  readonly manifests?: string;
  readonly out?: (line: string) => void;
}

/** Pods of the manifests matched to lab pods by address (the manifests follow the lab's plan). */
export function manifestPods(dir: string): Pod[] {
  const pods: Pod[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))) {
    for (const doc of parseAllDocuments(fs.readFileSync(path.join(dir, file), 'utf8'))) {
      const o = doc.toJS() as Pod | null;
      if (o?.kind === 'Pod') pods.push(o);
    }
  }
  return pods;
}

/** Starts echo servers in the lab pods that stand for the manifests' pods, on their container ports. */
export async function serveManifestPods(lab: Lab, pods: readonly Pod[]): Promise<Map<string, LabPod>> {
  const byName = new Map<string, LabPod>();
  for (const pod of pods) {
    const ip = pod.status?.podIPs?.[0]?.ip ?? pod.status?.podIP;
    const labPod = lab.pods.find((p) => p.ipv4 === ip || p.ipv6 === ip);
    if (!labPod) continue;
    const ports = pod.spec.containers.flatMap((c) => c.ports ?? []);
    const http = ports.filter((p) => (p.protocol ?? 'TCP') === 'TCP' && /http/.test(p.name ?? '')).map((p) => p.containerPort);
    const tcp = ports.filter((p) => (p.protocol ?? 'TCP') === 'TCP' && !/http/.test(p.name ?? '')).map((p) => p.containerPort);
    const udp = ports.filter((p) => p.protocol === 'UDP').map((p) => p.containerPort);
    await lab.startEchoServer(labPod, { http, tcp, udp });
    byName.set(pod.metadata.name, labPod);
  }
  return byName;
}

interface Request {
  readonly what: string;
  readonly address: string;
  readonly port: number;
  readonly proto: 'http' | 'tcp' | 'udp';
}

export async function runDemo(options: DemoOptions): Promise<void> {
  const out = options.out ?? ((line: string) => console.log(line));
  const manifests = options.manifests ?? EXAMPLE_MANIFESTS;
  out('• bringing up a lab: 3 nodes × 3 pods, dual-stack, nothing in the root namespace');
  const lab = await createLab({ nodes: 3, podsPerNode: 3 });
  try {
    out(`  lab ${lab.name}: nodes ${lab.nodes.map((n) => `${n.name} ${n.ipv4}`).join(', ')}`);
    const served = await serveManifestPods(lab, manifestPods(manifests));
    out(`• echo servers for ${[...served.keys()].join(', ')}`);
    out('• starting one Ferry agent per node (standalone source: deploy/standalone-example)');
    const agents = await Promise.all(lab.nodes.map((node) => startNodeAgent(lab, node, { manifests })));
    const node1 = lab.nodes[0]!;
    const services = JSON.parse(await ferryOnNode(lab, node1, ['service', 'list', '-o', 'json'])) as {
      frontend: string;
      type: string;
      scope: string;
      action: string;
    }[];
    const vip = (f: string): { address: string; port: number } => {
      const m = /^\[?([^\]]+?)\]?:(\d+)\//.exec(f)!;
      return { address: m[1]!, port: Number(m[2]) };
    };
    const requests: Request[] = [];
    const pick = (pred: (f: string) => boolean, what: string, proto: Request['proto']): void => {
      const row = services.find((s) => s.type === 'ClusterIP' && pred(s.frontend));
      if (row) requests.push({ what, ...vip(row.frontend), proto });
    };
    pick((f) => f.endsWith(':80/TCP') && !f.startsWith('10.96.0.20'), 'web (HTTP)', 'http');
    pick((f) => f.startsWith('10.96.0.20:9000'), 'api grpc port (TCP)', 'tcp');
    pick((f) => f.endsWith(':53/UDP'), 'dns (UDP)', 'udp');
    pick((f) => f.includes(':') && f.startsWith('[') && f.endsWith(':8080/TCP'), 'web-v6 (IPv6)', 'http');
    const refused = services.find((s) => s.type === 'ClusterIP' && s.action === 'reject');
    if (refused) requests.push({ what: 'empty (no endpoints)', ...vip(refused.frontend), proto: 'tcp' });
    for (const from of lab.nodes.map((n) => lab.podsOn(n)[0]!)) {
      for (const r of requests) {
        const report = await lab.probe(from, target(r.address, r.port), { proto: r.proto, count: 6, timeoutMs: 1500 });
        const s = report.summaries[0];
        const answered = s ? Object.entries(s.backends).map(([b, n]) => `${b}×${n}`).join(' ') : '';
        const errors = s ? Object.entries(s.errors).map(([e, n]) => `${e}×${n}`).join(' ') : '';
        out(`  ${from.name} → ${r.what.padEnd(20)} ${target(r.address, r.port).padEnd(24)} ${answered}${errors ? ` errors: ${errors}` : ''}`);
      }
    }
    out('• `ferry service list` on node-1:');
    out(await ferryOnNode(lab, node1, ['service', 'list']));
    out('• `ferry status` on node-1:');
    out(await ferryOnNode(lab, node1, ['status', '--run-dir', agents[0]!.runDir]));
    if (options.keep) {
      out(`• keeping lab ${lab.name}; remove it with: bin/ferry lab down ${lab.name}`);
      return;
    }
  } catch (error) {
    if (!options.keep) await lab.down();
    throw error;
  }
  await lab.down();
  out('• lab removed');
}
