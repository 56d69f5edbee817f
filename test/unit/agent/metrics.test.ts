// The agent's metrics as a scraper sees them: the exposition parses strictly, syncs and
// conntrack sweeps move their families, and with nothing pinned the map-backed families are
// simply empty (no scrape error).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentMetrics } from '../../../src/agent/metrics.ts';
import { startAgentHttp, parseBindAddress } from '../../../src/agent/http-server.ts';
import { proxyHealth } from '../../../src/agent/health.ts';
import { parseExposition } from '../../support/prometheus.ts';

const sync = (ok: boolean, durationMs: number, programmingLatencyMs?: number) => ({
  ok,
  full: false,
  at: 1_700_000_000_000,
  durationMs,
  programmingLatencyMs,
  upserted: 1,
  removed: 0,
  orphansRemoved: 0,
  failedFrontends: [],
});

test('syncs, programming latency and sweeps show up in a strictly parsed exposition', async () => {
  const m = new AgentMetrics({ pinDir: '/nonexistent-ferry-pins', programmed: () => ({ frontends: 7, backends: 3 }) });
  m.onSync(sync(true, 2, 150));
  m.onSync(sync(true, 4));
  m.onSync(sync(false, 1));
  m.onConntrackGc({ removedCt: 5, removedNat: 2 });
  const e = parseExposition(await m.registry.metrics());
  assert.equal(e.types.get('ferry_network_programming_duration_seconds'), 'histogram');
  assert.equal(e.value('ferry_syncs_total', { result: 'ok' }), 2);
  assert.equal(e.value('ferry_syncs_total', { result: 'failed' }), 1);
  assert.equal(e.value('ferry_sync_duration_seconds_count'), 2);
  assert.equal(e.value('ferry_network_programming_duration_seconds_count'), 1);
  assert.equal(e.value('ferry_network_programming_duration_seconds_bucket', { le: '0.25' }), 1);
  assert.equal(e.value('ferry_network_programming_duration_seconds_bucket', { le: '0.1' }), 0);
  assert.equal(e.value('ferry_last_successful_sync_timestamp_seconds'), 1_700_000_000);
  assert.deepEqual([e.value('ferry_programmed', { kind: 'frontends' }), e.value('ferry_programmed', { kind: 'backends' })], [7, 3]);
  assert.deepEqual([e.value('ferry_conntrack_gc_removed_total', { table: 'ct' }), e.value('ferry_conntrack_gc_runs_total')], [5, 1]);
  assert.equal(e.sum('ferry_map_entries'), 0);
});

test('the HTTP endpoints: /metrics, /healthz and /livez (200 or 503 with kube-proxy\'s JSON), 404 elsewhere', async () => {
  let healthy = true;
  await using server = await startAgentHttp({
    metricsAddress: '127.0.0.1:0',
    healthzAddress: '127.0.0.1:0',
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: '# TYPE x gauge\nx 1\n' }),
    health: () => proxyHealth({ now: 2000, ready: healthy, lastUpdated: 1000, pendingSince: undefined, timeoutMs: 1000 }),
  });
  const get = async (addr: string | undefined, p: string): Promise<[number, string]> => {
    const r = await fetch(`http://${addr}${p}`);
    return [r.status, await r.text()];
  };
  assert.deepEqual(await get(server.metrics, '/metrics'), [200, '# TYPE x gauge\nx 1\n']);
  const [code, body] = await get(server.healthz, '/healthz');
  assert.equal(code, 200);
  assert.deepEqual(Object.keys(JSON.parse(body) as object), ['lastUpdated', 'currentTime', 'nodeEligible']);
  healthy = false;
  assert.equal((await get(server.healthz, '/livez'))[0], 503);
  assert.equal((await get(server.healthz, '/metrics'))[0], 404, 'metrics only on the metrics address');
  assert.equal((await get(server.metrics, '/nope'))[0], 404);
});

test('bind addresses: host:port and [v6]:port; anything else names the flag', () => {
  assert.deepEqual(parseBindAddress('--metrics-bind-address', '[::1]:10249'), { host: '::1', port: 10249 });
  assert.throws(() => parseBindAddress('--metrics-bind-address', '10249'), /--metrics-bind-address: "10249" is not host:port/);
});
