// `ferry explain`, socket layer: runs bpf/explain.c — the socket load balancer's own decision code
// (lib/sock_lb.h) in a BPF_PROG_TYPE_SYSCALL program — against a node's live pinned maps with
// BPF_PROG_RUN, for one frontend and one client, and decodes what it decided. Nothing is written:
// the program picks with commit = 0 (no affinity update, no counters, no event).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from '../common/errors.ts';
import { BpfMap, BpfObject } from './bpf/index.ts';
import { encodeAddress, KINDS, protocolNumber, readAddress } from './codec/index.ts';
import { named, REASONS, VERDICTS } from './events/reasons.ts';

const OBJECT = fileURLToPath(new URL('../../build/bpf/explain.o', import.meta.url));
const PROGRAM = 'ferry_explain_sock';

// struct explain_sock_ctx (bpf/explain.c): offsets.
export const SOCKET_CTX = {
  address: 0,
  port: 16,
  protocol: 18,
  scope: 19,
  client: 24,
  found: 32,
  verdict: 33,
  reason: 34,
  flags: 35,
  serviceId: 36,
  count: 40,
  svcFlags: 42,
  affinityTimeout: 44,
  backendId: 48,
  backend: 52,
  backendPort: 68,
  backendState: 70,
  backendFlags: 71,
  algorithm: 72,
  kind: 73,
  size: 80,
} as const;

export interface SocketExplainRequest {
  readonly address: string;
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP';
  /** The client's network-namespace cookie (sessionAffinity is keyed by it); 0 = unknown. */
  readonly client?: bigint;
}

export interface SocketExplanation {
  /** A frontend entry exists for address:port/protocol. */
  readonly found: boolean;
  readonly serviceId?: number;
  readonly kind?: string;
  readonly backendSlots?: number;
  readonly affinityTimeoutSeconds?: number;
  readonly verdict?: string;
  readonly reason?: string;
  /** How the backend was chosen. */
  readonly pickedBy?: 'affinity' | 'random slot';
  readonly backend?: {
    readonly id: number;
    readonly address: string;
    readonly port: number;
    readonly terminating: boolean;
    readonly local: boolean;
  };
}

/**
 * Opens an explain object on the maps pinned in pinDir and loads it. Every map it declares must
 * already be pinned there (the caller checks the one that tells the feature is installed), so
 * loading reuses them and creates nothing; a reused map needs the max_entries it was created with
 * (--map-size-*), taken from the pin.
 */
export function loadOnPinnedMaps(file: string, pinDir: string): BpfObject {
  const obj = BpfObject.open(file, { pinRoot: pinDir });
  try {
    for (const name of fs.readdirSync(pinDir)) {
      if (!name.startsWith('ferry_')) continue;
      let pinned: BpfMap;
      try {
        pinned = BpfMap.openPinned(path.join(pinDir, name));
      } catch {
        continue; // a link pin
      }
      try {
        obj.setMapMaxEntries(name, pinned.maxEntries);
      } catch {
        // not a map of this object
      } finally {
        pinned.close();
      }
    }
    obj.load();
    return obj;
  } catch (error) {
    obj.close();
    throw error;
  }
}

export class SocketExplainer implements Disposable {
  readonly #object: BpfObject;

  private constructor(object: BpfObject) {
    this.#object = object;
  }

  /** Loads the explain program onto the maps pinned in pinDir (the agent's). */
  static open(pinDir: string): SocketExplainer {
    if (!fs.existsSync(path.join(pinDir, 'ferry_services_v1')))
      throw new InvalidArgumentError(
        `explain: no Ferry maps pinned in ${pinDir} (is the agent running there?)`,
      );
    const obj = loadOnPinnedMaps(OBJECT, pinDir);
    return new SocketExplainer(obj);
  }

  explain(request: SocketExplainRequest): SocketExplanation {
    const ctx = Buffer.alloc(SOCKET_CTX.size);
    encodeAddress(request.address, 'explain: destination').copy(ctx, SOCKET_CTX.address);
    ctx.writeUInt16BE(request.port, SOCKET_CTX.port);
    ctx.writeUInt8(protocolNumber(request.protocol, 'explain: protocol'), SOCKET_CTX.protocol);
    ctx.writeUInt8(0, SOCKET_CTX.scope); // LB_SCOPE_INTERNAL: what a pod's connect() sees
    ctx.writeBigUInt64LE(request.client ?? 0n, SOCKET_CTX.client);
    this.#object.program(PROGRAM).runSyscall(ctx);
    if (!ctx.readUInt8(SOCKET_CTX.found)) return { found: false };
    const verdict = named(VERDICTS, ctx.readUInt8(SOCKET_CTX.verdict));
    const reason = named(REASONS, ctx.readUInt8(SOCKET_CTX.reason));
    const base = {
      found: true,
      serviceId: ctx.readUInt32LE(SOCKET_CTX.serviceId),
      kind: KINDS[ctx.readUInt8(SOCKET_CTX.kind)] ?? 'unknown',
      backendSlots: ctx.readUInt16LE(SOCKET_CTX.count),
      affinityTimeoutSeconds: ctx.readUInt32LE(SOCKET_CTX.affinityTimeout),
      verdict,
      reason,
    };
    if (verdict !== 'TRANSLATED') return base;
    const backendIp = readAddress(ctx, SOCKET_CTX.backend);
    return {
      ...base,
      pickedBy: ctx.readUInt8(SOCKET_CTX.flags) & 0x10 ? 'affinity' : 'random slot',
      backend: {
        id: ctx.readUInt32LE(SOCKET_CTX.backendId),
        address: backendIp,
        port: ctx.readUInt16BE(SOCKET_CTX.backendPort),
        terminating: ctx.readUInt8(SOCKET_CTX.backendState) === 1,
        local: (ctx.readUInt8(SOCKET_CTX.backendFlags) & 1) !== 0,
      },
    };
  }

  [Symbol.dispose](): void {
    this.#object.close();
  }
}
