// healthCheckNodePort endpoints for eTP=Local LoadBalancer services, answering as kube-proxy
// does (pkg/proxy/healthcheck/service_health.go): 200 when this node has ready local endpoints,
// else 503, with a JSON body naming the service and the count, and the count in
// X-Load-Balancing-Endpoint-Weight. One listener per port; sync() opens, updates and closes
// them to match the model's health-check table.
import { createServer, type Server } from 'node:http';
import type { HealthCheck } from '../model/frontend.ts';
import type { NamespacedName } from '../model/k8s.ts';
import { FerryError } from '../common/errors.ts';
import { logger } from '../common/log.ts';

const log = logger('nodeport-health');

interface Listener {
  readonly server: Server;
  service: NamespacedName;
  localEndpoints: number;
}

export interface HealthServerOptions {
  /** Address to listen on; '::' (all, dual-stack) by default. */
  readonly host?: string;
  /** Whether the proxy itself is healthy (kube-proxy's serviceProxyHealthy); true by default. */
  readonly proxyHealthy?: () => boolean;
}

/** The body kube-proxy sends, byte for byte in shape. */
export function healthBody(service: NamespacedName, localEndpoints: number, proxyHealthy: boolean): string {
  const [namespace = '', name = ''] = service.includes('/') ? service.split('/', 2) : ['', service];
  return [
    '{',
    '\t"service": {',
    `\t\t"namespace": ${JSON.stringify(namespace)},`,
    `\t\t"name": ${JSON.stringify(name)}`,
    '\t},',
    `\t"localEndpoints": ${localEndpoints},`,
    `\t"serviceProxyHealthy": ${proxyHealthy}`,
    '}',
  ].join('\n');
}

export class HealthServer implements AsyncDisposable {
  readonly #host: string;
  readonly #proxyHealthy: () => boolean;
  readonly #listeners = new Map<number, Listener>();

  constructor(options: HealthServerOptions = {}) {
    this.#host = options.host ?? '::';
    this.#proxyHealthy = options.proxyHealthy ?? ((): boolean => true);
  }

  /** Ports currently served. */
  ports(): readonly number[] {
    return [...this.#listeners.keys()].sort((a, b) => a - b);
  }

  /** Make the listeners match `checks`; a port that cannot be bound is logged and skipped. */
  async sync(checks: ReadonlyMap<NamespacedName, HealthCheck>): Promise<void> {
    const wanted = new Map<number, HealthCheck>();
    for (const c of checks.values()) wanted.set(c.nodePort, c);
    for (const [port, l] of this.#listeners) {
      if (!wanted.has(port)) {
        this.#listeners.delete(port);
        await closeServer(l.server);
      }
    }
    for (const [port, c] of wanted) {
      const existing = this.#listeners.get(port);
      if (existing) {
        existing.service = c.service;
        existing.localEndpoints = c.localEndpoints;
        continue;
      }
      try {
        this.#listeners.set(port, await this.#listen(port, c));
      } catch (err) {
        log.error({ err, port, service: c.service }, 'healthCheckNodePort listener failed');
      }
    }
  }

  async #listen(port: number, c: HealthCheck): Promise<Listener> {
    const listener: Listener = {
      server: createServer(),
      service: c.service,
      localEndpoints: c.localEndpoints,
    };
    listener.server.on('request', (_req, res) => {
      const healthy = this.#proxyHealthy();
      const count = listener.localEndpoints;
      res.writeHead(count > 0 && healthy ? 200 : 503, {
        'Content-Type': 'application/json',
        'X-Content-Type-Options': 'nosniff',
        'X-Load-Balancing-Endpoint-Weight': String(count),
      });
      res.end(healthBody(listener.service, count, healthy));
    });
    await new Promise<void>((resolve, reject) => {
      listener.server.once('error', (err) =>
        reject(
          new FerryError(
            'FERRY_E_INVALID_ARGUMENT',
            `healthCheckNodePort ${port} for ${c.service}: ${err.message}`,
            { cause: err },
          ),
        ),
      );
      listener.server.listen(port, this.#host, () => resolve());
    });
    return listener;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const all = [...this.#listeners.values()];
    this.#listeners.clear();
    await Promise.all(all.map((l) => closeServer(l.server)));
  }
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
