// The agent's HTTP endpoints, kube-proxy style: /metrics on the metrics address, /healthz and
// /livez on the health address (one server when both addresses are the same). Loopback by
// default; a bind address of "0" or "" turns an endpoint off.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError } from '../common/errors.ts';
import type { HealthReport } from './health.ts';

export interface AgentHttpOptions {
  readonly metricsAddress: string;
  readonly healthzAddress: string;
  readonly metrics: () => Promise<{ readonly contentType: string; readonly body: string }>;
  readonly health: () => HealthReport;
}

export interface AgentHttp extends AsyncDisposable {
  /** host:port actually bound, per endpoint (ports chosen by the kernel when 0 was asked). */
  readonly metrics?: string;
  readonly healthz?: string;
}

/** "host:port" → parts; IPv6 as [::1]:10249. */
export function parseBindAddress(flag: string, value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new InvalidArgumentError(`${flag}: "${value}" is not host:port`);
  return { host: (m[1] ?? m[2])!, port };
}

function listen(server: http.Server, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      resolve(a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
    });
  });
}

interface Routes {
  readonly metrics: boolean;
  readonly health: boolean;
}

function route(options: AgentHttpOptions, routes: Routes, req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = (req.url ?? '/').split('?')[0];
  if (routes.metrics && url === '/metrics') {
    options
      .metrics()
      .then((m) => {
        res.writeHead(200, { 'content-type': m.contentType });
        res.end(m.body);
      })
      .catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`metrics: ${(err as Error).message}\n`);
      });
    return;
  }
  if (routes.health && (url === '/healthz' || url === '/livez')) {
    const h = options.health();
    res.writeHead(h.healthy ? 200 : 503, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff' });
    res.end(JSON.stringify(h.body));
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
}

export async function startAgentHttp(options: AgentHttpOptions): Promise<AgentHttp> {
  const wantMetrics = options.metricsAddress !== '' && options.metricsAddress !== '0';
  const wantHealth = options.healthzAddress !== '' && options.healthzAddress !== '0';
  // Port 0 asks the kernel for a port each time: two such addresses are two servers.
  const shared =
    wantMetrics && wantHealth && options.metricsAddress === options.healthzAddress && !options.metricsAddress.endsWith(':0');
  const handler = (routes: Routes): http.RequestListener => (req, res) => route(options, routes, req, res);
  const servers: http.Server[] = [];
  const out: { metrics?: string; healthz?: string } = {};
  try {
    if (wantMetrics) {
      const { host, port } = parseBindAddress('--metrics-bind-address', options.metricsAddress);
      const s = http.createServer(handler({ metrics: true, health: shared }));
      servers.push(s);
      out.metrics = await listen(s, host, port);
      if (shared) out.healthz = out.metrics;
    }
    if (wantHealth && !shared) {
      const { host, port } = parseBindAddress('--healthz-bind-address', options.healthzAddress);
      const s = http.createServer(handler({ metrics: false, health: true }));
      servers.push(s);
      out.healthz = await listen(s, host, port);
    }
  } catch (error) {
    for (const s of servers) s.close();
    throw error;
  }
  return {
    ...out,
    [Symbol.asyncDispose]: async () => {
      await Promise.all(
        servers.map((s) => {
          s.closeAllConnections();
          return new Promise<void>((resolve) => s.close(() => resolve()));
        }),
      );
    },
  };
}
