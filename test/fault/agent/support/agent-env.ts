// A throwaway place to run a real `ferry agent`: its own network namespace (lo only), its own
// cgroup, its own bpffs pin folder and temp dirs, all removed after the test whatever happened.
import type { TestContext } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { SocketLbDatapath } from '../../../../src/datapath/socket-lb.ts';

export const FERRY = fileURLToPath(new URL('../../../../bin/ferry', import.meta.url));

export interface AgentEnv {
  readonly id: string;
  readonly netns: string;
  readonly cgroup: string;
  readonly pinDir: string;
  readonly dir: string;
  readonly manifests: string;
  readonly runDir: string;
  /** The flags every agent of this env needs; add the test's own. */
  args(extra?: readonly string[]): string[];
  /** Starts `ferry agent` inside the env's namespace. */
  start(extra?: readonly string[], env?: NodeJS.ProcessEnv): AgentProcess;
  /** Runs a ferry command (e.g. `agent --uninstall`) inside the namespace, to completion. */
  run(args: readonly string[], timeoutMs?: number): Promise<Exit>;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface AgentProcess {
  readonly child: ChildProcess;
  /** Resolves when the process exits, or with undefined when it is still running after `ms`. */
  exited(ms: number): Promise<Exit | undefined>;
  stderr(): string;
}

function cgroup2Mount(): string {
  const line = fs.readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[2] === 'cgroup2');
  if (!line) throw new Error('no cgroup2 mount in /proc/mounts');
  return line.split(' ')[1]!;
}

function track(child: ChildProcess): AgentProcess {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Exit>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return {
    child,
    exited: (ms) => Promise.race([done, sleep(ms, undefined, { ref: false }).then(() => undefined)]),
    stderr: () => stderr,
  };
}

export function agentEnv(t: TestContext): AgentEnv {
  const id = randomBytes(4).toString('hex');
  const netns = `ferry-fa-${id}`;
  execFileSync('ip', ['netns', 'add', netns]);
  t.after(() => execFileSync('ip', ['netns', 'del', netns]));
  execFileSync('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  const cgroup = path.join(cgroup2Mount(), `ferry-fa-${id}`);
  fs.mkdirSync(cgroup);
  const pinDir = `/sys/fs/bpf/ferry-fa-${id}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-fa-'));
  const children: ChildProcess[] = [];
  t.after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await sleep(50);
    try {
      SocketLbDatapath.uninstall(pinDir);
    } catch {
      // what is left goes with the folder below
    }
    fs.rmSync(pinDir, { recursive: true, force: true });
    fs.rmdirSync(cgroup);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const manifests = path.join(dir, 'manifests');
  fs.mkdirSync(manifests);
  const runDir = path.join(dir, 'run');
  const inNetns = (argv: readonly string[], env?: NodeJS.ProcessEnv): ChildProcess => {
    const child = spawn('nsenter', [`--net=/run/netns/${netns}`, FERRY, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FERRY_LOG_LEVEL: 'info', ...env },
    });
    children.push(child);
    return child;
  };
  const env: AgentEnv = {
    id,
    netns,
    cgroup,
    pinDir,
    dir,
    manifests,
    runDir,
    args: (extra = []) => [
      'agent',
      '--source',
      'standalone',
      '--manifests',
      manifests,
      '--state-dir',
      path.join(dir, 'state'),
      '--run-dir',
      runDir,
      '--node-name',
      'node-1',
      '--node-addresses',
      '10.77.0.1',
      '--cgroup',
      cgroup,
      '--pin-dir',
      pinDir,
      '--nodeport-interfaces',
      'none',
      '--metrics-bind-address',
      '0',
      '--healthz-bind-address',
      '127.0.0.1:0',
      '--events',
      'off',
      ...extra,
    ],
    start: (extra, childEnv) => track(inNetns(env.args(extra), childEnv)),
    run: async (args, timeoutMs = 20_000) => {
      const p = track(inNetns(args));
      const exit = await p.exited(timeoutMs);
      if (!exit) {
        p.child.kill('SIGKILL');
        return { code: null, signal: 'SIGKILL', stdout: '', stderr: `${p.stderr()}\n(still running after ${timeoutMs} ms)` };
      }
      return exit;
    },
  };
  return env;
}

/** Waits for the agent's ready file; throws with its stderr when it exits or takes too long. */
export async function waitReady(env: AgentEnv, agent: AgentProcess, timeoutMs = 20_000): Promise<void> {
  const file = path.join(env.runDir, 'ready');
  const deadline = performance.now() + timeoutMs;
  while (!fs.existsSync(file)) {
    if (agent.child.exitCode !== null || agent.child.signalCode !== null)
      throw new Error(`agent exited before ready: ${agent.stderr()}`);
    if (performance.now() > deadline) throw new Error(`agent not ready in time: ${agent.stderr()}`);
    await sleep(25);
  }
}

/** The healthz address the agent logged (it binds port 0). */
export function healthzAddress(agent: AgentProcess): string {
  const line = agent.stderr().split('\n').find((l) => l.includes('"http endpoints"'));
  const addr = line ? (JSON.parse(line) as { healthz?: string }).healthz : undefined;
  if (!addr) throw new Error(`no healthz address logged: ${agent.stderr()}`);
  return addr;
}

/** GET inside the env's namespace (the agent's loopback is not ours). */
export function getInNetns(env: AgentEnv, url: string): { status: number; body: string } {
  const out = execFileSync('nsenter', [`--net=/run/netns/${env.netns}`, 'curl', '-s', '-m', '5', '-w', '\n%{http_code}', url], {
    encoding: 'utf8',
  });
  const i = out.lastIndexOf('\n');
  return { status: Number(out.slice(i + 1)), body: out.slice(0, i) };
}

/** Services with one ready Pod each, as one manifest file. */
export function writeServices(env: AgentEnv, count: number): void {
  const docs: object[] = [];
  for (let i = 0; i < count; i++) {
    docs.push(
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `web-${i}`, namespace: 'default' },
        spec: { clusterIP: `10.96.7.${i + 1}`, selector: { app: `web-${i}` }, ports: [{ port: 80, targetPort: 8080 }] },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `web-${i}`, namespace: 'default', labels: { app: `web-${i}` } },
        spec: { nodeName: 'node-1', containers: [{ name: 'web', ports: [{ containerPort: 8080 }] }] },
        status: { phase: 'Running', podIP: `10.244.7.${i + 1}`, conditions: [{ type: 'Ready', status: 'True' }] },
      },
    );
  }
  fs.writeFileSync(path.join(env.manifests, 'services.yaml'), docs.map((d) => stringify(d)).join('---\n'));
}
