// The status file `ferry status` reads and the ready file probes watch. Rewritten after every sync
// and every 2 s: source problems (a file that does not parse) change no Service, so no sync would
// report them. A write that fails (full disk) is retried; the agent keeps serving.
import fs from 'node:fs';
import type { Logger } from '../common/log.ts';
import { readyFilePath, statusFilePath, writeStatusFile, type StatusFile, type StatusServiceCidrs } from '../common/status-file.ts';
import type { Agent } from './agent.ts';
import type { AgentSource } from './source.ts';
import type { NodeRoutes } from './node-routes.ts';
import { WriteProblem } from './write-problem.ts';
import { serviceCidrWarning } from './service-cidrs.ts';

export interface StatusIdentity {
  readonly node: string;
  readonly pinDir: string;
  readonly cgroup: string;
  readonly source: StatusFile['source'];
  readonly runDir: string;
  readonly apiSocket: string | null;
}

const REFRESH_MS = 2000;

export class StatusReporter {
  readonly name = 'status file';
  readonly #identity: StatusIdentity;
  readonly #agent: Agent;
  readonly #source: AgentSource;
  readonly #routes: NodeRoutes | undefined;
  readonly #statusProblem: WriteProblem;
  readonly #readyProblem: WriteProblem;
  #refresh: NodeJS.Timeout | undefined;
  /** Set once the service CIDRs are written (after the first sync). */
  serviceCidrs: StatusServiceCidrs | undefined;

  constructor(identity: StatusIdentity, parts: { agent: Agent; source: AgentSource; routes: NodeRoutes | undefined; log: Logger }) {
    this.#identity = identity;
    this.#agent = parts.agent;
    this.#source = parts.source;
    this.#routes = parts.routes;
    this.#statusProblem = new WriteProblem(parts.log);
    this.#readyProblem = new WriteProblem(parts.log);
  }

  /** Why the status file cannot be written now, for /healthz; undefined when it can. */
  get problem(): string | undefined {
    return this.#statusProblem.current;
  }

  write(): void {
    const file = statusFilePath(this.#identity.runDir);
    this.#statusProblem.attempt(file, () => writeStatusFile(file, this.#snapshot()));
  }

  /** Writes the status and the ready file, then keeps the status fresh until stopped. */
  markReady(): void {
    this.write();
    const ready = readyFilePath(this.#identity.runDir);
    this.#readyProblem.attempt(ready, () => fs.writeFileSync(ready, `${Date.now()}\n`));
  }

  startRefresh(): void {
    this.#refresh = setInterval(() => this.write(), REFRESH_MS);
    this.#refresh.unref();
  }

  stop(): void {
    clearInterval(this.#refresh);
    fs.rmSync(readyFilePath(this.#identity.runDir), { force: true });
  }

  #snapshot(): StatusFile {
    const id = this.#identity;
    const agent = this.#agent.status();
    return {
      node: id.node,
      pid: process.pid,
      apiSocket: id.apiSocket,
      pinDir: id.pinDir,
      cgroup: id.cgroup,
      source: id.source,
      agent: { ...agent, warnings: [...agent.warnings, ...serviceCidrWarning(this.serviceCidrs)] },
      sourceStatus: this.#source.status(),
      ...(this.#routes ? { podRoutes: this.#routes.status() } : {}),
      ...(this.serviceCidrs ? { serviceCidrs: this.serviceCidrs } : {}),
      updatedAt: Date.now(),
    };
  }
}
