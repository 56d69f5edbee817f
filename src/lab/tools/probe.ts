// Client run inside lab pods (and the external client): N attempts per target over TCP, UDP
// (connected or not) or HTTP, one JSON line per attempt and a summary line per target (see
// protocol.ts). The errno of a failed attempt is the kernel's own (connect() returning
// ECONNREFUSED shows as ECONNREFUSED), so tests can assert on how a connection failed.
//   probe --proto tcp|udp|http [--count N] [--timeout MS] [--interval MS]
//         [--udp-mode connected|unconnected] [--payload TEXT] TARGET…   (TARGET: 1.2.3.4:80, [fd00::1]:80)
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, isIP, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import {
  hostPort,
  parseGreeting,
  type ProbeAttempt,
  type ProbeProto,
  type ProbeSummary,
} from './protocol.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    proto: { type: 'string', default: 'tcp' },
    count: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '2000' },
    interval: { type: 'string', default: '0' },
    'udp-mode': { type: 'string', default: 'connected' },
    payload: { type: 'string', default: 'ping' },
  },
});

function fail(message: string): never {
  process.stderr.write(`probe: ${message}\n`);
  process.exit(2);
}

function count(text: string, field: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) fail(`--${field}: not an integer ≥ ${min}: ${JSON.stringify(text)}`);
  return n;
}

interface Target {
  readonly text: string;
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
}

function parseTarget(text: string): Target {
  const m = /^\[([^\]]+)\]:([0-9]+)$/.exec(text) ?? /^([^:]+):([0-9]+)$/.exec(text);
  const family = m ? isIP(m[1]!) : 0;
  const port = m ? Number(m[2]) : 0;
  if (!m || family === 0 || port < 1 || port > 65535)
    fail(`target ${JSON.stringify(text)}: expected IP:PORT or [IPv6]:PORT`);
  return { text, host: m[1]!, port, family: family as 4 | 6 };
}

const proto = values.proto as ProbeProto;
if (!['tcp', 'udp', 'http'].includes(proto)) fail(`--proto: one of tcp, udp, http`);
const udpMode = values['udp-mode'];
if (udpMode !== 'connected' && udpMode !== 'unconnected') fail('--udp-mode: connected or unconnected');
const attempts = count(values.count, 'count', 1);
const timeoutMs = count(values.timeout, 'timeout', 1);
const intervalMs = count(values.interval, 'interval', 0);
const payload = values.payload;
if (positionals.length === 0) fail('no target');
const targets = positionals.map(parseTarget);

type Outcome = Omit<ProbeAttempt, 'type' | 'target' | 'proto' | 'seq' | 'latencyUs'>;

function errnoOf(error: unknown): Outcome {
  const e = error as NodeJS.ErrnoException;
  return { ok: false, errno: e.code ?? 'EUNKNOWN', error: e.message };
}

/** Runs `body` with a deadline; on expiry `cleanup` runs and the attempt reports ETIMEDOUT. */
function withTimeout(body: (done: (o: Outcome) => void) => void, cleanup: () => void): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (o: Outcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      cleanup();
      resolve(o);
    };
    const timer = setTimeout(
      () => done({ ok: false, errno: 'ETIMEDOUT', error: `no answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
    body(done);
  });
}

function fromGreeting(
  text: string,
  peer: string | undefined,
  extra: (g: { pod: string }) => boolean = () => true,
): Outcome {
  const g = parseGreeting(text);
  if (!g)
    return {
      ok: false,
      errno: 'EPROTO',
      error: `unexpected answer ${JSON.stringify(text.slice(0, 80))}`,
      peer,
    };
  return { ok: extra(g), backend: g.pod, peer, seenAs: g.client, serverLocal: g.local };
}

function tcpAttempt(t: Target, http: boolean): Promise<Outcome> {
  let socket: Socket | undefined;
  return withTimeout(
    (done) => {
      let peer: string | undefined;
      let received = '';
      let sent = false;
      socket = connect({ host: t.host, port: t.port });
      socket.setEncoding('utf8');
      socket.on('error', (e) => done({ ...errnoOf(e), peer }));
      socket.on('connect', () => {
        peer = hostPort(socket!.remoteAddress ?? '?', socket!.remotePort ?? 0);
        if (http) socket!.write(`GET / HTTP/1.1\r\nHost: ${t.text}\r\nConnection: close\r\n\r\n`);
      });
      socket.on('data', (chunk: string) => {
        received += chunk;
        if (http) return;
        const nl = received.indexOf('\n');
        if (nl < 0) return;
        if (!sent) {
          sent = true;
          socket!.write(payload); // greeting complete: check the echo next
        }
        if (received.length >= nl + 1 + payload.length) {
          const echoed = received.slice(nl + 1, nl + 1 + payload.length) === payload;
          done(fromGreeting(received, peer, () => echoed));
        }
      });
      socket.on('end', () => {
        if (!http) return done({ ok: false, errno: 'ECONNRESET', error: 'closed before answering', peer });
        const [head = '', body = ''] = received.split('\r\n\r\n', 2);
        const status = /^HTTP\/1\.[01] ([0-9]{3})/.exec(head)?.[1];
        if (status !== '200')
          return done({ ok: false, errno: 'EPROTO', error: `HTTP status ${status ?? '?'}`, peer });
        done(fromGreeting(body, peer));
      });
    },
    () => socket?.destroy(),
  );
}

function udpAttempt(t: Target): Promise<Outcome> {
  let socket: UdpSocket | undefined;
  return withTimeout(
    (done) => {
      socket = createSocket(t.family === 6 ? 'udp6' : 'udp4');
      let peer: string | undefined;
      socket.on('error', (e) => done({ ...errnoOf(e), peer }));
      socket.on('message', (message, rinfo) => {
        // Connected: what getpeername says; unconnected: where recvmsg says the reply came from.
        if (udpMode === 'unconnected') peer = hostPort(rinfo.address, rinfo.port);
        const text = message.toString('utf8');
        const nl = text.indexOf('\n');
        done(fromGreeting(text, peer, () => nl >= 0 && text.slice(nl + 1) === payload));
      });
      if (udpMode === 'connected') {
        socket.connect(t.port, t.host, (error?: Error) => {
          if (error) return done(errnoOf(error));
          const remote = socket!.remoteAddress();
          peer = hostPort(remote.address, remote.port);
          socket!.send(payload, (e) => e && done(errnoOf(e)));
        });
      } else {
        socket.send(payload, t.port, t.host, (e) => e && done(errnoOf(e)));
      }
    },
    () => {
      try {
        socket?.close();
      } catch {
        // already closed
      }
    },
  );
}

for (const target of targets) {
  const backends: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let ok = 0;
  for (let seq = 0; seq < attempts; seq++) {
    if (seq > 0 && intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
    const start = process.hrtime.bigint();
    const outcome = proto === 'udp' ? await udpAttempt(target) : await tcpAttempt(target, proto === 'http');
    const latencyUs = Number((process.hrtime.bigint() - start) / 1000n);
    const record: ProbeAttempt = { type: 'attempt', target: target.text, proto, seq, ...outcome, latencyUs };
    if (outcome.ok) ok++;
    if (outcome.backend !== undefined) backends[outcome.backend] = (backends[outcome.backend] ?? 0) + 1;
    if (outcome.errno !== undefined) errors[outcome.errno] = (errors[outcome.errno] ?? 0) + 1;
    process.stdout.write(JSON.stringify(record) + '\n');
  }
  const summary: ProbeSummary = {
    type: 'summary',
    target: target.text,
    proto,
    attempts,
    ok,
    failed: attempts - ok,
    backends,
    errors,
  };
  process.stdout.write(JSON.stringify(summary) + '\n');
}
