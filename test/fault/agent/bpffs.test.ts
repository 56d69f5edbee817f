// Defect 11 (bpffs): with no BPF filesystem on /sys/fs/bpf the agent spun at 100 % CPU in a
// recursive mkdir. It now mounts bpffs there, as Cilium's agent does. The test takes /sys/fs/bpf
// away only inside a private mount namespace of its own (the host's mount is never touched).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { agentEnv, FERRY } from './support/agent-env.ts';
import { faultTable } from '../support/fault-table.ts';

const table = faultTable('agent: bpffs');

test('with no bpffs on /sys/fs/bpf the agent mounts one and starts', async (t) => {
  const env = agentEnv(t);
  const args = env.args();
  const readyFile = path.join(env.runDir, 'ready');
  // One private mount namespace for the whole scenario: unmount, run, stop, uninstall.
  const script = `
    set -u
    while mountpoint -q /sys/fs/bpf; do umount /sys/fs/bpf; done
    before=$(stat -f -c %T /sys/fs/bpf)
    nsenter --net=/run/netns/"$1" "$2" "\${@:4}" 2>"${path.join(env.dir, 'agent.err')}" & pid=$!
    for i in $(seq 1 400); do [ -e "$3" ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.05; done
    ready=no; [ -e "$3" ] && ready=yes
    after=$(stat -f -c %T /sys/fs/bpf)
    kill -TERM $pid 2>/dev/null; wait $pid; code=$?
    nsenter --net=/run/netns/"$1" "$2" agent --uninstall --pin-dir "${env.pinDir}" --run-dir "${env.runDir}" >/dev/null 2>&1
    echo "before=$before after=$after ready=$ready code=$code"
    grep -v '^{' "${path.join(env.dir, 'agent.err')}" || true
  `;
  const { stdout } = await promisify(execFile)('unshare', ['-m', '--propagation', 'private', 'bash', '-c', script, 'bash', env.netns, FERRY, readyFile, ...args], {
    timeout: 60_000,
    encoding: 'utf8',
  });
  assert.match(stdout, /before=sysfs after=bpf_fs ready=yes code=0/, stdout);
  table.row('no bpffs mounted on /sys/fs/bpf', 'the agent mounts bpffs there and starts (no mkdir spin)');
});
