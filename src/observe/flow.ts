// A flow as `ferry observe` shows it: one datapath decision, enriched with who (pods, namespaces),
// what (the Service) and where (the node). Plain JSON: this is what the API streams and what
// `-o json` prints, so every field is a string, number, boolean or array of those.
import { protocolText, type CtState, type EventFlag, type Origin, type RawEvent, type Reason, type Verdict } from '../datapath/events/codec.ts';

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
}

export interface ServiceRef {
  readonly namespace: string;
  readonly name: string;
  /** The Service port's name; '' for an unnamed port. */
  readonly portName: string;
}

export interface FlowEndpoint {
  readonly ip?: string;
  readonly port?: number;
  readonly namespace?: string;
  readonly pod?: string;
  /** The node's own network namespace (a hostNetwork process, or the node itself). */
  readonly host?: boolean;
}

export interface Flow {
  /** Wall-clock time of the decision, ISO 8601 with milliseconds. */
  readonly time: string;
  readonly node: string;
  readonly origin: Origin;
  readonly verdict: Verdict;
  /** Absent for an ordinary translation / forward. */
  readonly reason?: Reason;
  readonly protocol: string;
  readonly source: FlowEndpoint;
  /** The original destination: the Service frontend (or the address a bind asked for). */
  readonly destination: FlowEndpoint;
  /** The Service by its frontend id; name fields absent when the id is not (or no longer) known. */
  readonly service?: Partial<ServiceRef> & { readonly id: number };
  /** The backend the destination was translated to, when one was picked. */
  readonly backend?: FlowEndpoint & { readonly id: number };
  readonly flags: readonly EventFlag[];
  readonly ctState?: CtState;
  /** Socket layer only; ids as decimal strings (64-bit). */
  readonly socket?: { readonly cookie: string; readonly cgroupId: string; readonly netnsCookie: string; readonly netnsInum: number };
  readonly ifindex?: number;
}

/** What the caller's network namespace is known to be. */
export interface NetnsInfo {
  readonly pod?: PodRef;
  readonly host?: boolean;
  /** Global addresses inside it. */
  readonly addresses: readonly string[];
}

/** Lookups the enrichment needs; each answers from memory (the agent keeps them current). */
export interface Directory {
  podByIp(ip: string): PodRef | undefined;
  netns(inum: number): NetnsInfo | undefined;
  serviceById(id: number): ServiceRef | undefined;
  /** A NodePort's Service (bind events carry no service id). */
  serviceByNodePort(port: number, protocol: string): ServiceRef | undefined;
}

export interface EnrichContext {
  readonly node: string;
  /** Add to an event's boot-clock nanoseconds to get Unix-epoch nanoseconds. */
  readonly bootToEpochNs: bigint;
  readonly directory: Directory;
}

const isV4 = (ip: string): boolean => !ip.includes(':');

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

// Date#toISOString costs more than the rest of the enrichment: events come in bursts within the
// same second, so format the second once.
let isoSecond = -1;
let isoPrefix = '';

/** ISO 8601 with milliseconds, UTC, for a Unix-epoch millisecond count. */
export function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 19);
  }
  const frac = ms - second * 1000;
  return `${isoPrefix}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
}

function endpoint(ip: string | undefined, port: number, pod: PodRef | undefined): Mutable<FlowEndpoint> {
  const e: Mutable<FlowEndpoint> = {};
  if (ip) e.ip = ip;
  if (port) e.port = port;
  if (pod) {
    e.namespace = pod.namespace;
    e.pod = pod.name;
  }
  return e;
}

function sourceOf(e: RawEvent, ctx: EnrichContext): FlowEndpoint {
  const ns = e.netnsInum ? ctx.directory.netns(e.netnsInum) : undefined;
  let ip = e.src;
  if (!ip && ns && !ns.host && e.dst) {
    // Before a packet exists the socket has no source yet; a pod with one address of the
    // destination's family will use exactly that one, so name it.
    const v4 = isV4(e.dst);
    let only: string | undefined;
    let n = 0;
    for (const a of ns.addresses) {
      if (isV4(a) === v4) {
        only = a;
        n++;
      }
    }
    if (n === 1) ip = only;
  }
  const pod = ns?.pod ?? (ip ? ctx.directory.podByIp(ip) : undefined);
  const source = endpoint(ip, e.src ? e.srcPort : 0, pod);
  if (ns?.host && !pod) source.host = true;
  return source;
}

/** Turns one decoded ring record into a Flow. Pure over the directory's answers. */
export function enrich(e: RawEvent, ctx: EnrichContext): Flow {
  const protocol = protocolText(e.protocol);
  // Keys assigned in reading order (JSON output keeps it); optional ones only when present.
  const flow = {
    time: isoTime(Number((e.tsNs + ctx.bootToEpochNs) / 1_000_000n)),
    node: ctx.node,
    origin: e.origin,
    verdict: e.verdict,
  } as Mutable<Flow>;
  if (e.reason !== 'NONE') flow.reason = e.reason;
  flow.protocol = protocol;
  flow.source = sourceOf(e, ctx);
  flow.destination = e.dst ? { ip: e.dst, port: e.dstPort } : {};
  const svc =
    e.serviceId !== 0
      ? ctx.directory.serviceById(e.serviceId)
      : e.origin === 'bind'
        ? ctx.directory.serviceByNodePort(e.dstPort, protocol)
        : undefined;
  if (svc) flow.service = { id: e.serviceId, namespace: svc.namespace, name: svc.name, portName: svc.portName };
  else if (e.serviceId) flow.service = { id: e.serviceId };
  if (e.xlated || e.backendId) {
    const b = endpoint(e.xlated, e.xlated ? e.xlatedPort : 0, e.xlated ? ctx.directory.podByIp(e.xlated) : undefined);
    flow.backend = Object.assign(b, { id: e.backendId });
  }
  flow.flags = e.flags;
  if (e.ctState !== 'none') flow.ctState = e.ctState;
  if (e.sockCookie || e.cgroupId || e.netnsCookie)
    flow.socket = { cookie: e.sockCookie.toString(), cgroupId: e.cgroupId.toString(), netnsCookie: e.netnsCookie.toString(), netnsInum: e.netnsInum };
  if (e.ifindex) flow.ifindex = e.ifindex;
  return flow;
}
