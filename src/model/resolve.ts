// Answers "where does this traffic go?" from a computed table: the model's own statement of
// behaviour, used by the packet-flow tests and by `ferry explain` to compare with the datapath.
import { canonicalIp } from '../common/ip.ts';
import { frontendKey, type Backend, type FrontendTable } from './frontend.ts';
import type { Protocol } from './k8s.ts';

export interface FlowQuery {
  /** Pods and the node itself use internal frontends; traffic from outside the node uses external ones. */
  readonly source: 'pod' | 'node' | 'external';
  readonly destination: string;
  readonly port: number;
  readonly protocol: Protocol;
}

/** The backends that may serve the flow, 'REJECT', 'DROP', or 'NONE' when no frontend matches. */
export type FlowResult = readonly Backend[] | 'REJECT' | 'DROP' | 'NONE';

export function resolve(table: FrontendTable, query: FlowQuery): FlowResult {
  const address = canonicalIp(query.destination) ?? query.destination;
  const scope = query.source === 'external' ? 'external' : 'internal';
  const frontend = table.frontends.get(frontendKey(address, query.port, query.protocol, scope));
  if (!frontend) return 'NONE';
  if (frontend.action === 'reject') return 'REJECT';
  if (frontend.action === 'drop') return 'DROP';
  return frontend.backends;
}
