// The one set of manifest builders every lab test uses for its standalone agents: lab pods as
// Running, Ready Pods (the standalone source builds EndpointSlices from Pod status, as the
// EndpointSlice controller would), ClusterIP and NodePort Services in front of the echo server's
// port 7000, and the YAML files an agent's --manifests directory holds.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import type { LabPod } from '../../../src/lab/types.ts';

/** A Running, Ready Pod on its lab node; `terminating` sets a deletionTimestamp (still Ready). */
export function readyPod(
  p: LabPod,
  labels: Record<string, string>,
  ports: readonly object[] = [{ name: 'echo', containerPort: 7000 }],
  extra: { readonly terminating?: boolean } = {},
): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.name,
      namespace: 'default',
      labels,
      ...(extra.terminating ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    spec: { nodeName: `node-${p.nodeIndex}`, containers: [{ name: 'echo', ports }] },
    status: {
      phase: 'Running',
      podIP: p.ipv4,
      podIPs: [{ ip: p.ipv4 }, { ip: p.ipv6 }],
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

/** A Service port; the name is optional, as for a single-port Service. */
export const tcp = (port = 80, targetPort: number | string = 7000, name?: string): object => ({
  ...(name ? { name } : {}),
  port,
  targetPort,
  protocol: 'TCP',
});
export const udp = (port = 53, targetPort: number | string = 7000, name?: string): object => ({
  ...(name ? { name } : {}),
  port,
  targetPort,
  protocol: 'UDP',
});

/**
 * A ClusterIP Service with fixed addresses (one per family; two make it RequireDualStack), ports
 * defaulting to TCP 80 → 7000; `spec` merges over it (type, affinity, traffic policies).
 */
export function service(
  name: string,
  clusterIPs: string | readonly string[],
  selector: Record<string, string>,
  ports: readonly object[] = [tcp()],
  spec: object = {},
): object {
  const ips = typeof clusterIPs === 'string' ? [clusterIPs] : [...clusterIPs];
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: {
      clusterIP: ips[0],
      clusterIPs: ips,
      ipFamilies: ips.map((ip) => (ip.includes(':') ? 'IPv6' : 'IPv4')),
      ipFamilyPolicy: ips.length > 1 ? 'RequireDualStack' : 'SingleStack',
      selector,
      ports,
      ...spec,
    },
  };
}

/** A NodePort Service (port 80 → 7000) with a fixed ClusterIP; `spec` and `rest` (status, metadata) merge over it. */
export function nodePortService(
  name: string,
  ip: string,
  selector: object,
  nodePort: number,
  spec: object = {},
  rest: object = {},
): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: {
      type: 'NodePort',
      clusterIP: ip,
      clusterIPs: [ip],
      selector,
      ports: [{ port: 80, targetPort: 7000, nodePort }],
      ...spec,
    },
    ...rest,
  };
}

function yamlDocuments(docs: readonly object[]): string {
  return docs.map((d) => stringify(d)).join('---\n');
}

/**
 * Replaces `file` with `docs` in one rename, so an agent watching the directory never parses a
 * half-written file.
 */
export function writeYamlFile(file: string, docs: readonly object[]): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, yamlDocuments(docs));
  fs.renameSync(tmp, file);
}

/** A new temp directory holding `docs` as one multi-document YAML file, for an agent's --manifests. */
export function writeManifests(prefix: string, docs: readonly object[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.writeFileSync(path.join(dir, 'all.yaml'), yamlDocuments(docs));
  return dir;
}
