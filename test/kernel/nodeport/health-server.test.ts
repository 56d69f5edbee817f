import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HealthServer } from '../../../src/agent/health-server.ts';
import type { HealthCheck } from '../../../src/model/frontend.ts';

test('healthCheckNodePort: 200 with local endpoints, 503 without, kube-proxy JSON; closed when gone', async () => {
  await using hs = new HealthServer({ host: '127.0.0.1' });
  const port = 30000 + Math.floor(Math.random() * 2000);
  const checks = (n: number): Map<string, HealthCheck> =>
    new Map([['default/web', { service: 'default/web', nodePort: port, localEndpoints: n }]]);
  await hs.sync(checks(2));
  let r = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-load-balancing-endpoint-weight'), '2');
  assert.deepEqual(await r.json(), {
    service: { namespace: 'default', name: 'web' },
    localEndpoints: 2,
    serviceProxyHealthy: true,
  });
  await hs.sync(checks(0));
  r = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(r.status, 503);
  assert.equal(((await r.json()) as { localEndpoints: number }).localEndpoints, 0);
  await hs.sync(new Map());
  assert.deepEqual(hs.ports(), []);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/`));
});
