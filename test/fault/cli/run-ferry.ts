// Runs the real `bin/ferry` as a subprocess, and makes the temp run and pin folders (and fake
// agents) the CLI fault tests point it at. Everything made here is removed by the returned cleanup.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FERRY = fileURLToPath(new URL('../../../bin/ferry', import.meta.url));

export interface FerryRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runFerry(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<FerryRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(FERRY, args, { env: { ...process.env, FERRY_DEBUG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The stderr lines of a run, without the empty tail. */
export function stderrLines(run: FerryRun): string[] {
  return run.stderr.split('\n').filter((l) => l.length > 0);
}

/** A stack trace line as Node prints them, or the source excerpt it prints for an uncaught error. */
export const STACK = /^\s+at |^file:\/\/|^Node\.js v/m;

export interface Scratch {
  readonly dir: string;
  readonly runDir: string;
  /** An empty folder in bpffs: a node whose datapath is not installed. */
  readonly bpffsPinDir: string;
  cleanup(): void;
}

export function scratch(): Scratch {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-cli-fault-'));
  const runDir = path.join(dir, 'run');
  fs.mkdirSync(runDir);
  const bpffsPinDir = path.join('/sys/fs/bpf', `ferry-cli-fault-${process.pid}-${path.basename(dir)}`);
  fs.mkdirSync(bpffsPinDir);
  return {
    dir,
    runDir,
    bpffsPinDir,
    cleanup: () => {
      fs.rmSync(bpffsPinDir, { recursive: true, force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A stand-in for a running agent: a process whose command line is `<dir>/bin/ferry agent`, as the
 * real one's, serving the API socket; `answer: false` accepts connections and never replies (hung).
 */
export async function fakeAgent(dir: string, socketPath: string, answer: boolean): Promise<ChildProcess> {
  const script = path.join(dir, 'bin', 'ferry');
  fs.mkdirSync(path.dirname(script), { recursive: true });
  fs.writeFileSync(
    script,
    `const net = require('node:net');
const [socketPath, answer] = process.argv.slice(3);
require('node:fs').rmSync(socketPath, { force: true }); // the previous fake's, as the real agent does
net.createServer((s) => s.on('data', () => { if (answer === 'yes') s.end('{"status":{}}\\n'); })).listen(socketPath, () => process.stdout.write('up\\n'));
`,
  );
  const child = spawn(process.execPath, [script, 'agent', socketPath, answer ? 'yes' : 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`fake agent exited with ${code}`)));
    child.stdout!.once('data', () => resolve());
  });
  return child;
}

/** The pid of a process that has exited (a crashed agent's, as a stale status file names it). */
export function deadPid(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', () => resolve(child.pid!));
  });
}

/** A status file as src/agent/run.ts writes it (the fields `ferry status` reads). */
export function writeStatusFile(runDir: string, pid: number, overrides: Record<string, unknown> = {}): string {
  const file = path.join(runDir, 'status.json');
  const agent = { ready: true, syncs: 3, failedSyncs: 0, consecutiveFailures: 0, frontends: 4, services: 2, invalidObjects: [], warnings: [] };
  fs.writeFileSync(file, JSON.stringify({ node: 'n1', pid, agent, sourceStatus: { issues: [] }, updatedAt: Date.now(), ...overrides }));
  return file;
}
