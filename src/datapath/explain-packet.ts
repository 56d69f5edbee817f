// `ferry explain --path packet`: runs bpf/explain_nodeport.c — the north-south programs' own
// decision for a new flow (np_decide in lib/nodeport_stages.h) in a BPF_PROG_TYPE_SYSCALL program — on a
// node's live pinned maps with BPF_PROG_RUN, for one 5-tuple, and decodes it, together with the
// conntrack entry of that tuple when the flow already exists. Nothing is written.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { canonicalIp, parseIp } from '../common/ip.ts';
import { InvalidArgumentError } from '../common/errors.ts';
import { BpfMap, type BpfObject } from './bpf/index.ts';
import { KINDS, protocolNumber, readAddress } from './codec/index.ts';
import { named, REASONS, VERDICTS } from './events/reasons.ts';
import { MAP_CT, MAP_SRC_RANGES, encodeSrcRangeKey } from './nodeport/maps.ts';
import { loadOnPinnedMaps } from './explain.ts';

const OBJECT = fileURLToPath(new URL('../../build/bpf/explain_nodeport.o', import.meta.url));
const PROGRAM = 'ferry_explain_packet';

// struct explain_packet_ctx (bpf/explain_nodeport.c): offsets, checked against its BTF by a test.
export const PACKET_CTX = {
  src: 0,
  dst: 16,
  sport: 32,
  dport: 34,
  proto: 36,
  v6: 37,
  nodeAddr: 38,
  kind: 39,
  found: 40,
  verdict: 41,
  reason: 42,
  byMaglev: 43,
  established: 44,
  ctFlags: 45,
  serviceId: 48,
  count: 52,
  maglev: 54,
  action: 55,
  backendId: 56,
  backend: 60,
  backendPort: 76,
  backendLocal: 78,
  wildcard: 79,
  size: 80,
} as const;

const CT_F_SNAT = 0x1;
const CT_F_DSR = 0x10;

export interface PacketExplainRequest {
  readonly client: string;
  readonly clientPort: number;
  readonly address: string;
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP';
  /** The destination is one of the node's addresses (default: held by an interface of this netns). */
  readonly nodeAddress?: boolean;
}

export interface PacketExplanation {
  readonly found: boolean;
  /** The frontend's kind: NodePort, LoadBalancer or ExternalIP. */
  readonly kind?: string;
  /** Matched through the node's wildcard NodePort entry rather than an entry for this address. */
  readonly wildcard?: boolean;
  readonly serviceId?: number;
  readonly backendSlots?: number;
  readonly maglev?: boolean;
  readonly verdict?: string;
  readonly reason?: string;
  /** How a new flow's backend is chosen. */
  readonly pickedBy?: 'maglev' | 'random slot';
  /** The flow exists: its conntrack entry, which decides before any new choice. */
  readonly established?: {
    readonly backend: string;
    readonly port: number;
    readonly backendId: number;
    readonly snat: boolean;
    readonly dsr: boolean;
    readonly local: boolean;
  };
  readonly backend?: {
    readonly id: number;
    readonly address: string;
    readonly port: number;
    readonly local: boolean;
  };
}

/** Addresses held by this network namespace's interfaces (the node's, where the agent runs). */
function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list ?? []) out.add(canonicalIp(a.address) ?? a.address);
  return out;
}

export class PacketExplainer implements Disposable {
  readonly #object: BpfObject;
  readonly #srcRanges: BpfMap;

  private constructor(object: BpfObject, srcRanges: BpfMap) {
    this.#object = object;
    this.#srcRanges = srcRanges;
  }

  /** Loads the program onto the maps pinned in pinDir; north-south must be installed there. */
  static open(pinDir: string): PacketExplainer {
    if (!fs.existsSync(path.join(pinDir, MAP_CT)))
      throw new InvalidArgumentError(
        `explain: north-south is not installed in ${pinDir} (no ${MAP_CT}; is the agent running with --nodeport-interfaces?)`,
      );
    const object = loadOnPinnedMaps(OBJECT, pinDir);
    try {
      return new PacketExplainer(object, BpfMap.openPinned(path.join(pinDir, MAP_SRC_RANGES)));
    } catch (error) {
      object.close();
      throw error;
    }
  }

  explain(request: PacketExplainRequest): PacketExplanation {
    const { ctx, family } = encodeRequest(request);
    this.#object.program(PROGRAM).runSyscall(ctx);
    const established = decodeEstablished(ctx);
    if (!ctx.readUInt8(PACKET_CTX.found)) return { found: false, ...(established ? { established } : {}) };
    const base = decodeFrontend(ctx);
    if (established) return { ...base, established };
    // np_decide's first check, done here on the same LPM map (see bpf/explain_nodeport.c).
    const host = `${canonicalIp(request.client) ?? request.client}/${family === 4 ? 32 : 128}`;
    const allow = this.#srcRanges.lookup(encodeSrcRangeKey(base.serviceId, host));
    if (allow !== undefined && allow[0] === 0) return { ...base, verdict: 'DROPPED', reason: 'SOURCE_RANGE' };
    if (base.verdict !== 'FORWARDED') return base;
    return {
      ...base,
      pickedBy: ctx.readUInt8(PACKET_CTX.byMaglev) ? 'maglev' : 'random slot',
      backend: decodeBackend(ctx),
    };
  }

  [Symbol.dispose](): void {
    this.#srcRanges.close();
    this.#object.close();
  }
}

/** The program's input: the 5-tuple and whether the destination is a node address. */
function encodeRequest(request: PacketExplainRequest): { ctx: Buffer; family: 4 | 6 } {
  const src = parseIp(request.client);
  const dst = parseIp(request.address);
  if (!src) throw new InvalidArgumentError(`explain: --from: "${request.client}" is not an IP address`);
  if (!dst) throw new InvalidArgumentError(`explain: --to: "${request.address}" is not an IP address`);
  if (src.family !== dst.family)
    throw new InvalidArgumentError(
      `explain: --from ${request.client} and --to ${request.address} are not the same IP family`,
    );
  const ctx = Buffer.alloc(PACKET_CTX.size);
  Buffer.from(src.bytes).copy(ctx, PACKET_CTX.src);
  Buffer.from(dst.bytes).copy(ctx, PACKET_CTX.dst);
  ctx.writeUInt16BE(request.clientPort, PACKET_CTX.sport);
  ctx.writeUInt16BE(request.port, PACKET_CTX.dport);
  ctx.writeUInt8(protocolNumber(request.protocol, 'explain: --protocol'), PACKET_CTX.proto);
  ctx.writeUInt8(dst.family === 6 ? 1 : 0, PACKET_CTX.v6);
  const nodeAddress =
    request.nodeAddress ?? localAddresses().has(canonicalIp(request.address) ?? request.address);
  ctx.writeUInt8(nodeAddress ? 1 : 0, PACKET_CTX.nodeAddr);
  return { ctx, family: src.family };
}

function decodeBackend(ctx: Buffer): NonNullable<PacketExplanation['backend']> {
  return {
    address: readAddress(ctx, PACKET_CTX.backend),
    port: ctx.readUInt16BE(PACKET_CTX.backendPort),
    id: ctx.readUInt32LE(PACKET_CTX.backendId),
    local: ctx.readUInt8(PACKET_CTX.backendLocal) !== 0,
  };
}

/** The flow's conntrack entry, when it exists. */
function decodeEstablished(ctx: Buffer): PacketExplanation['established'] {
  if (!ctx.readUInt8(PACKET_CTX.established)) return undefined;
  const { address, port, id, local } = decodeBackend(ctx);
  const ctFlags = ctx.readUInt8(PACKET_CTX.ctFlags);
  return {
    backend: address,
    port,
    backendId: id,
    snat: (ctFlags & CT_F_SNAT) !== 0,
    dsr: (ctFlags & CT_F_DSR) !== 0,
    local,
  };
}

/** The frontend the program matched and its decision for a new flow. */
function decodeFrontend(ctx: Buffer): PacketExplanation & { readonly serviceId: number; readonly verdict: string } {
  return {
    found: true,
    kind: KINDS[ctx.readUInt8(PACKET_CTX.kind)] ?? 'unknown',
    wildcard: ctx.readUInt8(PACKET_CTX.wildcard) !== 0,
    serviceId: ctx.readUInt32LE(PACKET_CTX.serviceId),
    backendSlots: ctx.readUInt16LE(PACKET_CTX.count),
    maglev: ctx.readUInt8(PACKET_CTX.maglev) !== 0,
    verdict: named(VERDICTS, ctx.readUInt8(PACKET_CTX.verdict)),
    reason: named(REASONS, ctx.readUInt8(PACKET_CTX.reason)),
  };
}
