// Manifests the lab tests hand to a standalone agent: lab pods as Running, Ready Pods (the
// standalone source builds EndpointSlices from Pod status, as the EndpointSlice controller would)
// and NodePort Services in front of the echo server's port 7000.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import type { LabPod } from '../../../src/lab/types.ts';

export function readyPod(
  p: LabPod,
  labels: Record<string, string>,
  ports: readonly object[] = [{ name: 'echo', containerPort: 7000 }],
): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: p.name, namespace: 'default', labels },
    spec: { nodeName: `node-${p.nodeIndex}`, containers: [{ name: 'echo', ports }] },
    status: {
      phase: 'Running',
      podIP: p.ipv4,
      podIPs: [{ ip: p.ipv4 }, { ip: p.ipv6 }],
      conditions: [{ type: 'Ready', status: 'True' }],
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

/** A new temp directory holding `docs` as one multi-document YAML file, for an agent's --manifests. */
export function writeManifests(prefix: string, docs: readonly object[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.writeFileSync(path.join(dir, 'all.yaml'), docs.map((d) => stringify(d)).join('---\n'));
  return dir;
}
