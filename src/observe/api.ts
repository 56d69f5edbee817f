// The agent's local flow API: a unix socket under the run directory, mode 0600 (root only, like the
// pins it describes). One request per connection, one JSON line:
//   {"op":"flows","last":N,"follow":bool,"filters":[{field,values,negate}]}
//   {"op":"status"}
// and newline-delimited JSON back: {"flow":{…}} per flow, {"lost":{…}} when events were not
// delivered while following (the datapath's counters moved, or this client was too slow), one
// {"status":{…}} for status, {"error":"…"} on a bad request. A non-follow request ends with the
// connection; a follow request ends when the client closes it.
import fs from 'node:fs';
import net from 'node:net';
import { FerryError, InvalidArgumentError } from '../common/errors.ts';
import type { EventCounters } from '../datapath/events/codec.ts';
import { matches, parseFilters, type FlowFilter } from './filter.ts';
import type { Flow } from './flow.ts';
import type { RecentFlows } from './recent.ts';

export const API_SOCKET = 'observe.sock';

export interface FlowsRequest {
  readonly op: 'flows';
  readonly last?: number;
  readonly follow?: boolean;
  readonly filters?: readonly FlowFilter[];
}
export type ApiRequest = FlowsRequest | { readonly op: 'status' };

export interface LostNotice {
  /** Datapath: reservations the ring refused since the last notice. */
  readonly ringFull?: number;
  /** Datapath: events the token bucket held back. */
  readonly rateLimited?: number;
  /** This stream: flows skipped because the client did not read fast enough. */
  readonly slowClient?: number;
}

export type ApiMessage =
  | { readonly flow: Flow }
  | { readonly lost: LostNotice }
  | { readonly status: ObserveStatus }
  | { readonly error: string };

export interface ObserveStatus {
  readonly node: string;
  readonly events: EventCounters | undefined;
  readonly buffer: { readonly size: number; readonly capacity: number; readonly total: number };
  readonly reader: { readonly received: number; readonly decodeErrors: number; readonly pending: number };
  readonly clients: number;
}

export interface ApiServerOptions {
  readonly socketPath: string;
  readonly flows: RecentFlows;
  readonly status: () => ObserveStatus;
  /** Datapath counters for loss notices while following (polled every `lossPollMs`). */
  readonly counters: () => EventCounters | undefined;
  readonly lossPollMs?: number;
  /** Bytes a follower may have queued before flows are skipped for it (counted as slowClient). */
  readonly maxQueuedBytes?: number;
}

export const DEFAULT_LAST = 20;

export function parseRequest(line: string): ApiRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new InvalidArgumentError('request: not JSON');
  }
  if (typeof raw !== 'object' || raw === null) throw new InvalidArgumentError('request: expected an object');
  const o = raw as Record<string, unknown>;
  const op = o.op ?? 'flows';
  if (op === 'status') return { op };
  if (op !== 'flows') throw new InvalidArgumentError(`request.op: unknown "${String(op)}"`);
  if (o.last !== undefined && (!Number.isInteger(o.last) || (o.last as number) < 0))
    throw new InvalidArgumentError('request.last: expected a non-negative integer');
  if (o.follow !== undefined && typeof o.follow !== 'boolean') throw new InvalidArgumentError('request.follow: expected a boolean');
  return {
    op,
    ...(o.last !== undefined ? { last: o.last as number } : {}),
    ...(o.follow !== undefined ? { follow: o.follow } : {}),
    filters: parseFilters(o.filters),
  };
}

export class ObserveApiServer implements AsyncDisposable {
  readonly #options: ApiServerOptions;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  private constructor(options: ApiServerOptions, server: net.Server) {
    this.#options = options;
    this.#server = server;
  }

  static async listen(options: ApiServerOptions): Promise<ObserveApiServer> {
    fs.rmSync(options.socketPath, { force: true }); // a previous agent's socket
    const server = net.createServer();
    const api = new ObserveApiServer(options, server);
    server.on('connection', (s) => api.#accept(s));
    // Created with mode 0600 from the start: no window in which another user could connect.
    const mask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.socketPath, () => resolve());
      });
    } finally {
      process.umask(mask);
    }
    fs.chmodSync(options.socketPath, 0o600);
    return api;
  }

  get clients(): number {
    return this.#sockets.size;
  }

  #accept(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = '';
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8');
      const nl = buffered.indexOf('\n');
      if (nl < 0) {
        if (buffered.length > 65536) this.#fail(socket, 'request: line too long');
        return;
      }
      socket.off('data', onData);
      let request: ApiRequest;
      try {
        request = parseRequest(buffered.slice(0, nl));
      } catch (error) {
        this.#fail(socket, (error as Error).message);
        return;
      }
      this.#serve(socket, request);
    };
    socket.on('data', onData);
  }

  #fail(socket: net.Socket, message: string): void {
    socket.end(`${JSON.stringify({ error: message })}\n`);
  }

  #serve(socket: net.Socket, request: ApiRequest): void {
    const send = (m: ApiMessage): boolean => socket.write(`${JSON.stringify(m)}\n`);
    if (request.op === 'status') {
      send({ status: this.#options.status() });
      socket.end();
      return;
    }
    const filters = request.filters ?? [];
    const keep = (f: Flow): boolean => matches(f, filters);
    const history = this.#options.flows.last(request.last ?? (request.follow ? 0 : DEFAULT_LAST), keep);
    if (!request.follow) {
      socket.end(history.map((flow) => `${JSON.stringify({ flow })}\n`).join(''));
      return;
    }
    for (const flow of history) send({ flow });
    const maxQueued = this.#options.maxQueuedBytes ?? 8 << 20;
    let slow = 0;
    const unsubscribe = this.#options.flows.subscribe((flow) => {
      if (!keep(flow)) return;
      if (socket.writableLength > maxQueued) {
        slow++;
        return;
      }
      if (slow) {
        send({ lost: { slowClient: slow } });
        slow = 0;
      }
      send({ flow });
    });
    let seen = this.#options.counters();
    const poll = setInterval(() => {
      const now = this.#options.counters();
      if (now && seen) {
        const ringFull = now.lostRingFull - seen.lostRingFull;
        const rateLimited = now.rateLimited - seen.rateLimited;
        if (ringFull > 0 || rateLimited > 0) send({ lost: { ...(ringFull ? { ringFull } : {}), ...(rateLimited ? { rateLimited } : {}) } });
      }
      seen = now;
    }, this.#options.lossPollMs ?? 1000);
    socket.on('close', () => {
      clearInterval(poll);
      unsubscribe();
    });
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    fs.rmSync(this.#options.socketPath, { force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Client side: sends one request and yields each message as it arrives. */
export async function* request(socketPath: string, req: ApiRequest): AsyncGenerator<ApiMessage> {
  const socket = net.createConnection(socketPath);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new FerryError(
            'FERRY_E_INVALID_ARGUMENT',
            `observe API ${socketPath}: ${e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? 'no agent listening (is it running with events on, and is this its --run-dir?)' : e.message}`,
          ),
        ),
      );
    });
    socket.write(`${JSON.stringify(req)}\n`);
    let rest = '';
    for await (const chunk of socket as AsyncIterable<Buffer>) {
      rest += chunk.toString('utf8');
      let nl: number;
      while ((nl = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        if (line.trim()) yield JSON.parse(line) as ApiMessage;
      }
    }
  } finally {
    socket.destroy();
  }
}
