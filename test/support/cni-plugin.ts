// Runs the real bin/ferry-cni as a runtime would: inside a node's network namespace, with the CNI_*
// environment and the network configuration on stdin. Shared by the kernel and fault CNI tests.
import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CNI_PLUGIN = fileURLToPath(new URL('../../bin/ferry-cni', import.meta.url));

export interface PluginRun {
  readonly code: number;
  readonly out: Record<string, unknown> | undefined;
}

export function runPlugin(nodeNetns: string, env: Record<string, string>, stdin: string): Promise<PluginRun> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'nsenter',
      [`--net=${nodeNetns}`, '--', CNI_PLUGIN],
      { env: { PATH: process.env.PATH, FERRY_LOG_LEVEL: 'silent', CNI_PATH: '/usr/lib/cni', ...env } },
      (error, stdout) => {
        if (error && typeof error.code !== 'number') return reject(error);
        resolve({
          code: child.exitCode ?? -1,
          out: stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined,
        });
      },
    );
    child.stdin!.end(stdin);
  });
}

/** Puts an interface named `eth0` into a pod namespace that no CNI ADD made (another plugin's). */
export function addForeignEth0(podNetns: string): void {
  execFileSync('nsenter', [`--net=${podNetns}`, 'ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other0']);
}
