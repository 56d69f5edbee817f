// Makes a TCP port on the machine's loopback (say, a test API server on 127.0.0.1:PORT) reachable
// as 127.0.0.1:LOCAL inside a lab host, without connecting the lab to the root network namespace:
// the hop in between is a unix socket, and unix sockets live in the filesystem, not in a network
// namespace. Two socat processes (one per side) carry the bytes; TLS passes through untouched, so
// a certificate for 127.0.0.1 stays valid on both sides.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../common/errors.ts';
import type { Lab } from './lab.ts';
import type { LabProcess } from './exec.ts';
import type { LabHost } from './types.ts';

export interface LoopbackBridge extends AsyncDisposable {
  /** host:port to use inside the lab host. */
  readonly address: string;
}

export interface LoopbackBridgeOptions {
  /** The port on the machine's 127.0.0.1. */
  readonly remotePort: number;
  /** The port on the lab host's 127.0.0.1 (default: the same). */
  readonly localPort?: number;
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new FerryError('FERRY_E_LAB', `loopback bridge: ${what} not up in time`);
    await sleep(20);
  }
}

export async function bridgeLoopback(lab: Lab, host: LabHost, options: LoopbackBridgeOptions): Promise<LoopbackBridge> {
  const localPort = options.localPort ?? options.remotePort;
  const dir = path.join(lab.state.runDir, 'bridges');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const socket = path.join(dir, `${host.name}-${localPort}.sock`);
  fs.rmSync(socket, { force: true });
  let outside: ChildProcess | undefined;
  let inside: LabProcess | undefined;
  const close = async (): Promise<void> => {
    await inside?.kill();
    if (outside && outside.exitCode === null) {
      const gone = new Promise((resolve) => outside!.once('exit', resolve));
      outside.kill('SIGTERM');
      await gone;
    }
    fs.rmSync(socket, { force: true });
  };
  try {
    outside = spawn('socat', [`UNIX-LISTEN:${socket},fork,mode=600`, `TCP:127.0.0.1:${options.remotePort}`], {
      stdio: 'ignore',
    });
    await waitFor(() => fs.existsSync(socket), `unix socket ${socket}`);
    inside = lab.spawn(host, ['socat', `TCP-LISTEN:${localPort},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${socket}`]);
    const deadline = performance.now() + 5000;
    for (;;) {
      const r = await lab.exec(host, ['ss', '-Htln', `sport = :${localPort}`]);
      if (r.stdout.includes(`127.0.0.1:${localPort}`)) break;
      if (performance.now() > deadline)
        throw new FerryError('FERRY_E_LAB', `loopback bridge: listener on ${host.name} 127.0.0.1:${localPort} not up: ${inside.stderrTail}`);
      await sleep(20);
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { address: `127.0.0.1:${localPort}`, [Symbol.asyncDispose]: close };
}
