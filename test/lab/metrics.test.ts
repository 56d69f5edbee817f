// The agent's /metrics, /healthz and /livez scraped from inside the node, parsed strictly, and
// watched as the lab changes: a new Service raises what is programmed and records a programming
// latency; a connect to a Service without endpoints raises the refusal counters; flows are counted
// by Service; and a change the maps cannot take leaves the agent healthy but degraded, /healthz
// naming the frontends it could not program, until the change is withdrawn (issue #12 item 9).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLab, target, type Lab } from '../../src/lab/index.ts';
import { startNodeAgent } from '../../src/lab/agents.ts';
import { eventually } from '../support/eventually.ts';
import { parseExposition, type Exposition } from '../support/prometheus.ts';
import { readyPod, service, tcp, writeYamlFile } from './support/manifests.ts';

/** A Service with `ports` TCP ports 80, 81, … all to the echo server's 7000. */
const webService = (name: string, ip: string, selector: Record<string, string>, ports = 1): object =>
  service(name, ip, selector, Array.from({ length: ports }, (_, i) => tcp(80 + i, 7000, `p${i}`)));

describe('agent metrics and health', { concurrency: false }, () => {
  let lab: Lab;
  let dir: string;
  let docs: object[];

  const write = (list: object[]): void => writeYamlFile(path.join(dir, 'all.yaml'), list);
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
  const until = (what: string, check: (e: Exposition) => boolean): Promise<Exposition> =>
    eventually(
      async () => {
        const e = await scrape();
        assert.ok(check(e), `metrics: ${what} did not happen`);
        return e;
      },
      { timeoutMs: 5000, intervalMs: 100 },
    );

  before(async () => {
    lab = await createLab({ nodes: 1, podsPerNode: 2 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-metrics-'));
    docs = [
      readyPod(lab.pod('n1-p1'), { app: 'web' }),
      readyPod(lab.pod('n1-p2'), { app: 'web' }),
      webService('web', '10.96.23.1', { app: 'web' }),
      webService('empty', '10.96.23.2', { app: 'none' }),
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
    docs.push(webService('more', '10.96.23.3', { app: 'web' }));
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

  test("/healthz and /livez: 200 with kube-proxy's JSON; a change the maps cannot take is listed as degraded", async () => {
    const ok = await get('/healthz', 10256);
    assert.equal(ok.code, '200');
    const body = JSON.parse(ok.body) as { lastUpdated: string; currentTime: string; nodeEligible: boolean };
    assert.ok(Date.parse(body.currentTime) >= Date.parse(body.lastUpdated));
    assert.equal((await get('/livez', 10256)).code, '200');
    // 8 ports × (master + 2 backends) = 24 slots: more than the 16-entry map holds.
    docs.push(webService('huge', '10.96.23.9', { app: 'web' }, 8));
    write(docs);
    await until('a failed sync', (e) => (e.value('ferry_syncs_total', { result: 'failed' }) ?? 0) > 0);
    // A map-full sync does not leave the agent stuck: it stays healthy and says what is missing.
    const degraded = async (): Promise<readonly string[]> => {
      const r = await get('/healthz', 10256);
      assert.equal(r.code, '200', r.body);
      return (JSON.parse(r.body) as { degraded?: readonly string[] }).degraded ?? [];
    };
    await eventually(
      async () => {
        const missing = await degraded();
        assert.ok(missing.length > 0, 'the frontends the full map refused are listed');
        assert.ok(
          missing.every((m) => m.startsWith('10.96.23.9|') && /ferry_services_v1 is full/.test(m)),
          missing.join('; '),
        );
      },
      { timeoutMs: 5000, intervalMs: 200 },
    );
    docs.pop();
    write(docs);
    await eventually(async () => assert.deepEqual(await degraded(), [], 'nothing degraded once the change is withdrawn'), {
      timeoutMs: 10_000,
      intervalMs: 200,
    });
  });
});
