// Compact builders for Services and EndpointSlices, so each flow-table case shows only what matters.
import type { Endpoint, EndpointSlice, Service, ServicePort, ServiceSpec } from '../../../src/model/index.ts';
import { LABEL_SERVICE_NAME } from '../../../src/model/index.ts';

export function svc(name: string, spec: Partial<ServiceSpec> & { clusterIP?: string }, extra: Partial<Service> = {}): Service {
  const ports: ServicePort[] = [...(spec.ports ?? [{ port: 80, targetPort: 8080 }])];
  return {
    kind: 'Service',
    metadata: { name, namespace: 'default', ...(extra.metadata ?? {}) },
    spec: { clusterIPs: [spec.clusterIP ?? '10.96.0.10'], ...spec, ports },
    ...(extra.status ? { status: extra.status } : {}),
  };
}

export interface EpSpec {
  ip: string;
  node?: string;
  zone?: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  zones?: string[];
  nodes?: string[];
}

export function ep(ip: string, node = 'node-1', more: Partial<EpSpec> = {}): EpSpec {
  return { ip, node, ...more };
}

export function slice(
  service: string,
  name: string,
  endpoints: EpSpec[],
  ports: { name?: string; port: number; protocol?: 'TCP' | 'UDP' }[] = [{ port: 8080 }],
  opts: { addressType?: 'IPv4' | 'IPv6'; labels?: Record<string, string> } = {},
): EndpointSlice {
  return {
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', labels: opts.labels ?? { [LABEL_SERVICE_NAME]: service } },
    addressType: opts.addressType ?? (endpoints[0]?.ip.includes(':') ? 'IPv6' : 'IPv4'),
    ports: ports.map((p) => ({ ...(p.name !== undefined ? { name: p.name } : {}), port: p.port, protocol: p.protocol ?? 'TCP' })),
    endpoints: endpoints.map(
      (e): Endpoint => ({
        addresses: [e.ip],
        ...(e.node !== undefined ? { nodeName: e.node } : {}),
        ...(e.zone !== undefined ? { zone: e.zone } : {}),
        conditions: {
          ...(e.ready !== undefined ? { ready: e.ready } : {}),
          ...(e.serving !== undefined ? { serving: e.serving } : {}),
          ...(e.terminating !== undefined ? { terminating: e.terminating } : {}),
        },
        ...(e.zones || e.nodes
          ? {
              hints: {
                ...(e.zones ? { forZones: e.zones.map((z) => ({ name: z })) } : {}),
                ...(e.nodes ? { forNodes: e.nodes.map((n) => ({ name: n })) } : {}),
              },
            }
          : {}),
      }),
    ),
  };
}
