// A minimal Kubernetes API client: GET a JSON document, or stream a watch as lines. Configuration
// and authentication (kubeconfig, in-cluster service account, client certificates, tokens) come from
// @kubernetes/client-node's KubeConfig; the requests themselves are plain node:https so that a watch
// is a stream we can abort, time out and restart on our own terms.
import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { FerryError } from '../../common/errors.ts';

export interface KubeClientOptions {
  /** Path to a kubeconfig; when absent: in-cluster config if present, else the default kubeconfig. */
  readonly kubeconfig?: string;
  /** Overrides the API server address (kube-proxy's --master), e.g. when kube-proxy's Service VIP is gone. */
  readonly server?: string;
}

export class KubeApiError extends FerryError {
  readonly status: number;
  readonly reason: string;
  constructor(path: string, status: number, reason: string, message: string) {
    super('FERRY_E_SOURCE', `GET ${path}: ${status} ${reason}: ${message}`);
    this.status = status;
    this.reason = reason;
  }
}

export class KubeClient {
  readonly #config: KubeConfig;
  readonly #server: URL;

  private constructor(config: KubeConfig, server: URL) {
    this.#config = config;
    this.#server = server;
  }

  static fromOptions(options: KubeClientOptions = {}): KubeClient {
    const config = new KubeConfig();
    if (options.kubeconfig) config.loadFromFile(options.kubeconfig);
    else if (process.env.KUBERNETES_SERVICE_HOST) config.loadFromCluster();
    else config.loadFromDefault();
    const cluster = config.getCurrentCluster();
    const server = options.server ?? cluster?.server;
    if (!server) throw new FerryError('FERRY_E_SOURCE', 'kubeconfig: current context has no cluster server');
    return new KubeClient(config, new URL(server));
  }

  get server(): string {
    return this.#server.toString();
  }

  async getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
    const response = await this.#request(path, signal);
    const body = await readAll(response);
    if ((response.statusCode ?? 0) >= 300) throw apiError(path, response.statusCode ?? 0, body);
    return JSON.parse(body) as T;
  }

  /** Streams a watch: yields one parsed JSON event per line until the server ends it or `signal` aborts. */
  async *watchLines(path: string, signal: AbortSignal): AsyncGenerator<unknown> {
    const response = await this.#request(path, signal);
    if ((response.statusCode ?? 0) >= 300)
      throw apiError(path, response.statusCode ?? 0, await readAll(response));
    response.setEncoding('utf8');
    let buffered = '';
    for await (const chunk of response) {
      buffered += chunk as string;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) yield JSON.parse(line);
      }
    }
  }

  async #request(path: string, signal?: AbortSignal): Promise<http.IncomingMessage> {
    const url = new URL(path, this.#server);
    const options: https.RequestOptions = {
      method: 'GET',
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || (url.protocol === 'https:' ? 443 : 80),
      path: url.pathname + url.search,
      headers: { Accept: 'application/json' },
      ...(signal ? { signal } : {}),
    };
    await this.#config.applyToHTTPSOptions(options);
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const request = transport.request(options, resolve);
      request.on('error', reject);
      request.end();
    });
  }
}

function apiError(path: string, status: number, body: string): KubeApiError {
  let reason = 'Error';
  let message = body.slice(0, 300);
  try {
    const parsed = JSON.parse(body) as { reason?: string; message?: string };
    reason = parsed.reason ?? reason;
    message = parsed.message ?? message;
  } catch {
    // not a Status object: keep the raw text
  }
  return new KubeApiError(path, status, reason, message);
}

async function readAll(response: http.IncomingMessage): Promise<string> {
  response.setEncoding('utf8');
  let body = '';
  for await (const chunk of response) body += chunk as string;
  return body;
}
