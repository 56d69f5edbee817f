// The lab built with CniPodNetwork: every pod wired by bin/ferry-cni as a runtime would, pods on
// different nodes reach each other (the lab's own node routes), and removing a pod frees its address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createLab, target, ECHO_PORTS } from '../../../src/lab/lab.ts';
import { CniPodNetwork } from '../../../src/lab/lab-driver.ts';

test('a lab whose pods are all wired by ferry-cni', async (t) => {
  const dataDir = mkdtempSync(`${tmpdir()}/ferry-lab-cni-`);
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  await using lab = await createLab({ nodes: 2, podsPerNode: 2, driver: new CniPodNetwork({ dataDir }) });
  const addrs = lab.pods.map((p) => p.ipv4);
  assert.equal(new Set(addrs).size, 4);
  for (const p of lab.pods) {
    const node = lab.node(p.node);
    assert.ok(
      p.ipv4.startsWith(node.podCidrV4.split('.').slice(0, 3).join('.') + '.'),
      `${p.name} ${p.ipv4} in ${node.podCidrV4}`,
    );
  }
  await using server = await lab.startEchoServer('n2-p1');
  assert.ok(server.pid > 0);
  const to = lab.pod('n2-p1');
  const report = await lab.probe('n1-p1', [target(to.ipv4, ECHO_PORTS.tcp), target(to.ipv6, ECHO_PORTS.tcp)]);
  assert.deepEqual(
    report.attempts.map((a) => a.ok),
    [true, true],
    JSON.stringify(report.attempts),
  );
  const files = (): string[] => readdirSync(`${dataDir}/n2/ferry-lab`).filter((f) => f !== 'lock');
  assert.equal(files().length, 4);
  await lab.removePod('n2-p2');
  assert.equal(files().length, 2, 'DEL released both addresses');
});
