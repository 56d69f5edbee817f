// The one state object the load-balancing writer's parts share: what is programmed, which ids are
// taken, and the reference counts that say what a change left unused. Every part (ids, refcounts,
// publish, adopt) is a function over it, so starting over (readBack) is one fresh object rather
// than a dozen fields cleared by hand.
import type { Frontend } from '../../model/frontend.ts';
import type { Protocol } from '../../model/k8s.ts';
import type { MapLike } from '../codec/map.ts';
import type { BackendValue } from '../lb-codec.ts';

export interface LbMaps {
  readonly services: MapLike;
  readonly backends: MapLike;
  readonly revnat: MapLike;
  readonly nodeports: MapLike;
}

/** What a frontend looks like in the maps: enough to compare with a desired Frontend. */
export interface ProgrammedFrontend {
  readonly key: string; // frontendKey()
  readonly address: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly scope: Frontend['scope'];
  readonly serviceId: number;
  readonly flags: number;
  readonly affinityTimeout: number;
  readonly algorithm: number;
  readonly kind: Frontend['kind'];
  readonly backendIds: readonly number[];
}

export interface LbState {
  readonly programmed: Map<string, ProgrammedFrontend>;
  /** frontend address|port|protocol → service id (both scopes share it: one reverse-NAT entry). */
  readonly serviceIds: Map<string, number>;
  readonly backendIds: Map<string, number>; // address|port|protocol → id
  readonly backends: Map<number, BackendValue>;
  readonly nodePorts: Set<string>; // port|protocol currently in the nodeports map
  /** port|protocol → the NodePort frontends that mark it (the bind hook keeps local sockets off it). */
  readonly nodePortRefs: Map<string, Set<string>>;
  // Reference counts, so that collecting what a change left unused costs O(change), not O(maps).
  readonly backendRefs: Map<number, number>;
  readonly addressRefs: Map<string, number>;
  readonly backendCandidates: Set<number>;
  readonly addressCandidates: Set<string>;
  readonly nodePortCandidates: Set<string>;
  /** The highest id handed out; 0 until the first allocation scans what is taken. */
  serviceIdCursor: number;
  backendIdCursor: number;
}

export function emptyLbState(): LbState {
  return {
    programmed: new Map(),
    serviceIds: new Map(),
    backendIds: new Map(),
    backends: new Map(),
    nodePorts: new Set(),
    nodePortRefs: new Map(),
    backendRefs: new Map(),
    addressRefs: new Map(),
    backendCandidates: new Set(),
    addressCandidates: new Set(),
    nodePortCandidates: new Set(),
    serviceIdCursor: 0,
    backendIdCursor: 0,
  };
}

export const addressKey = (address: string, port: number, protocol: Protocol): string => `${address}|${port}|${protocol}`;

export const nodePortKey = (port: number, protocol: Protocol): string => `${port}|${protocol}`;

/** The services-map identity of a frontend: address|port|protocol|scope (what frontendKey() gives). */
export const slotGroupKey = (key: { address: string; port: number; protocol: Protocol; scope: string }): string =>
  `${key.address}|${key.port}|${key.protocol}|${key.scope}`;
