import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readStatusFile, statusFilePath, StatusFileError, writeStatusFile, type StatusFile } from '../../../src/common/status-file.ts';

const written: StatusFile = {
  node: 'node-1',
  pid: 4242,
  apiSocket: '/run/ferry/observe.sock',
  pinDir: '/sys/fs/bpf/ferry',
  cgroup: '/sys/fs/cgroup',
  source: 'standalone',
  agent: {
    ready: true,
    syncs: 3,
    failedSyncs: 1,
    consecutiveFailures: 0,
    lastSync: { ok: true, full: false, at: 1_700_000_000_000, durationMs: 1.5 },
    lastSuccessAt: 1_700_000_000_000,
    services: 2,
    frontends: 5,
    invalidObjects: [{ object: 'Service default/bad', field: 'spec.ports', message: 'Service default/bad: spec.ports: empty' }],
    warnings: [],
    degraded: [],
  },
  sourceStatus: { issues: [{ message: 'x.yaml: not YAML', file: 'x.yaml' }] },
  updatedAt: 1_700_000_000_001,
};

test('what the agent writes, the CLI reads back whole; a corrupt field is named', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-status-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = statusFilePath(dir);
  assert.equal(readStatusFile(file), undefined, 'no file: no status');
  writeStatusFile(file, written);
  assert.deepEqual(readStatusFile(file), written);
  assert.deepEqual(fs.readdirSync(dir), ['status.json'], 'no temporary file is left behind');

  writeStatusFile(file, { ...written, agent: { ...written.agent, syncs: 'three' as unknown as number } });
  assert.throws(
    () => readStatusFile(file),
    (e: unknown) => e instanceof StatusFileError && e.message.startsWith(`${file}: field agent.syncs: not a number`),
  );
});
