// The agent's /metrics, /healthz and /livez scraped from inside the node, parsed strictly, and
// watched as the lab changes: a new Service raises what is programmed and records a programming
// latency; a connect to a Service without endpoints raises the refusal counters; flows are counted
// by Service; and a change the maps cannot take turns /healthz to 503 until it is withdrawn.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { createLab, target, type Lab, type LabPod } from '../../src/lab/index.ts';
import { startNodeAgent } from '../../src/lab/agents.ts';
import { parseExposition, type Exposition } from '../support/prometheus.ts';

function pod(p: LabPod): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: p.name, namespace: 'default', labels: { app: 'web' } },
    spec: {
      nodeName: `node-${p.nodeIndex}`,
      containers: [{ name: 'echo', ports: [{ containerPort: 7000 }] }],
    },
    status: {
      phase: 'Running',
      podIP: p.ipv4,
      podIPs: [{ ip: p.ipv4 }, { ip: p.ipv6 }],
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

function service(name: string, ip: string, selector: object, ports = 1): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: {
      clusterIP: ip,
      clusterIPs: [ip],
      selector,
      ports: Array.from({ length: ports }, (_, i) => ({ name: `p${i}`, port: 80 + i, targetPort: 7000 })),
    },
  };
}

describe('agent metrics and health', { concurrency: false }, () => {
  let lab: Lab;
  let dir: string;
  let docs: object[];

  const write = (list: object[]): void => {
    fs.writeFileSync(path.join(dir, 'all.yaml.tmp'), list.map((d) => stringify(d)).join('---\n'));
    fs.renameSync(path.join(dir, 'all.yaml.tmp'), path.join(dir, 'all.yaml'));
  };
  const get = async (p: string, port = 10249): Promise<{ code: string; body: string }> => {
    const r = await lab.exec(lab.node('n1'), [
      'curl',
      '-s',
      '-w',
      '\n%{http_code}',
      `http://127.0.0.1:${port}${p}`,
    ]);
    const nl = r.stdout.lastIndexOf('\n');
    return { body: r.stdout.slice(0, nl), code: r.stdout.slice(nl + 1) };
  };
  const scrape = async (): Promise<Exposition> => {
    const r = await get('/metrics');
    assert.equal(r.code, '200');
    return parseExposition(r.body);
  };
  const until = async (what: string, check: (e: Exposition) => boolean): Promise<Exposition> => {
    const deadline = performance.now() + 5000;
    for (;;) {
      const e = await scrape();
      if (check(e)) return e;
      if (performance.now() > deadline) assert.fail(`metrics: ${what} did not happen`);
      await sleep(100);
    }
  };

  before(async () => {
    lab = await createLab({ nodes: 1, podsPerNode: 2 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-metrics-'));
    docs = [
      pod(lab.pod('n1-p1')),
      pod(lab.pod('n1-p2')),
      service('web', '10.96.23.1', { app: 'web' }),
      service('empty', '10.96.23.2', { app: 'none' }),
    ];
    write(docs);
    await Promise.all(lab.pods.map((p) => lab.startEchoServer(p, { tcp: [7000], udp: [], http: [] })));
    // A small services map and a 1 s health timeout, so that an oversized change can stall a sync.
    await startNodeAgent(lab, lab.node('n1'), {
      manifests: dir,
      extraArgs: ['--map-size-services', '16', '--health-timeout', '1'],
    });
  });

  after(async () => {
    await lab?.down();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a new Service: programmed objects rise and a programming latency is observed', async () => {
    const before = await scrape();
    const frontends = before.value('ferry_programmed', { kind: 'frontends' })!;
    const latencies = before.value('ferry_network_programming_duration_seconds_count') ?? 0;
    assert.ok(frontends >= 2, `frontends ${frontends}`);
    assert.ok(before.value('ferry_map_capacity', { map: 'ferry_services_v1' }) === 16);
    docs.push(service('more', '10.96.23.3', { app: 'web' }));
    write(docs);
    const after = await until(
      'frontend programmed',
      (e) => e.value('ferry_programmed', { kind: 'frontends' })! > frontends,
    );
    assert.ok(after.value('ferry_network_programming_duration_seconds_count')! > latencies);
    assert.ok(
      after.value('ferry_map_entries', { map: 'ferry_services_v1' })! >
        before.value('ferry_map_entries', { map: 'ferry_services_v1' })!,
    );
  });

  test('a connect to a Service without endpoints moves the refusal counters; flows are counted by Service', async () => {
    const before = await scrape();
    const refused = before.value('ferry_socket_lb_total', { reason: 'reject_no_backend' }) ?? 0;
    const r = await lab.probe('n1-p1', target('10.96.23.2', 80), { count: 3, timeoutMs: 1000 });
    assert.deepEqual(r.summaries[0]?.errors, { ECONNREFUSED: 3 });
    await lab.probe('n1-p1', target('10.96.23.1', 80), { count: 4 });
    const after = await until(
      'flows counted',
      (e) => (e.value('ferry_flows_total', { service: 'default/web', verdict: 'TRANSLATED' }) ?? 0) >= 4,
    );
    assert.equal(after.value('ferry_socket_lb_total', { reason: 'reject_no_backend' }), refused + 3);
    assert.equal(
      after.value('ferry_drops_total', { path: 'socket', reason: 'reject_no_backend' }),
      refused + 3,
    );
    assert.ok(
      (after.value('ferry_flows_total', { service: 'default/empty', verdict: 'REJECTED' }) ?? 0) >= 3,
    );
    assert.ok(after.value('ferry_events_total', { outcome: 'emitted' })! >= 7);
  });

  test("/healthz and /livez: 200 with kube-proxy's JSON; 503 while a change cannot be programmed", async () => {
    const ok = await get('/healthz', 10256);
    assert.equal(ok.code, '200');
    const body = JSON.parse(ok.body) as { lastUpdated: string; currentTime: string; nodeEligible: boolean };
    assert.ok(Date.parse(body.currentTime) >= Date.parse(body.lastUpdated));
    assert.equal((await get('/livez', 10256)).code, '200');
    // 8 ports × (master + 2 backends) = 24 slots: more than the 16-entry map holds.
    docs.push(service('huge', '10.96.23.9', { app: 'web' }, 8));
    write(docs);
    await sleep(1500);
    const failing = await until(
      'a failed sync',
      (e) => (e.value('ferry_syncs_total', { result: 'failed' }) ?? 0) > 0,
    );
    assert.ok(failing);
    const stalled = await get('/healthz', 10256);
    assert.equal(stalled.code, '503', stalled.body);
    assert.match(stalled.body, /waited/);
    docs.pop();
    write(docs);
    const deadline = performance.now() + 10_000;
    while ((await get('/healthz', 10256)).code !== '200') {
      if (performance.now() > deadline) assert.fail('healthz did not recover after the change was withdrawn');
      await sleep(200);
    }
  });
});
