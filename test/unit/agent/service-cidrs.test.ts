// Where the agent's service CIDRs come from: the flag, the standalone allocator, or one list of the
// API server's ServiceCIDRs — and a list that fails turns refusal off with the reason, never the agent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolveServiceCidrs, serviceCidrWarning } from '../../../src/agent/service-cidrs.ts';

/** A kubeconfig for a plain-HTTP fake API server (what `--kubeconfig` is given). */
function kubeconfigFor(t: test.TestContext, server: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-cidrs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config');
  fs.writeFileSync(
    file,
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]\n` +
      `users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
  );
  return file;
}

async function apiServer(t: test.TestContext, status: number, body: unknown): Promise<string> {
  const server = http.createServer((req, res) => {
    res.writeHead(req.url?.startsWith('/apis/networking.k8s.io/v1/servicecidrs') ? status : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  return kubeconfigFor(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
}

test('the flag wins; standalone defaults to the allocator ranges', async () => {
  assert.deepEqual(await resolveServiceCidrs({ source: 'kubernetes', serviceCidrs: ['10.0.0.0/24'] }), { refusing: true, cidrs: ['10.0.0.0/24'], from: '--service-cidrs' });
  const standalone = await resolveServiceCidrs({ source: 'standalone' });
  assert.deepEqual(standalone, { refusing: true, cidrs: ['10.96.0.0/16', 'fd00:10:96::/108'], from: 'standalone allocator' });
  assert.deepEqual(serviceCidrWarning(standalone), []);
});

test('kubernetes: every ServiceCIDR object counts, once each', async (t) => {
  const kubeconfig = await apiServer(t, 200, {
    items: [{ spec: { cidrs: ['10.96.0.0/16', 'fd00:10:96::/112'] } }, { spec: { cidrs: ['10.97.0.0/24', '10.96.0.0/16'] } }, { spec: {} }],
  });
  assert.deepEqual(await resolveServiceCidrs({ source: 'kubernetes', kubeconfig }), {
    refusing: true,
    cidrs: ['10.96.0.0/16', '10.97.0.0/24', 'fd00:10:96::/112'],
    from: 'GET /apis/networking.k8s.io/v1/servicecidrs',
  });
});

test('kubernetes: a forbidden list, or none at all, turns refusal off with the reason', async (t) => {
  const forbidden = await apiServer(t, 403, { kind: 'Status', reason: 'Forbidden', message: 'servicecidrs is forbidden' });
  const r = await resolveServiceCidrs({ source: 'kubernetes', kubeconfig: forbidden });
  assert.equal(r.refusing, false);
  assert.match(r.reason!, /403 Forbidden.*servicecidrs is forbidden.*--service-cidrs/);
  assert.match(serviceCidrWarning(r)[0]!, /not refusing unserved addresses in the service CIDRs \(GET \/apis\/networking.k8s.io\/v1\/servicecidrs\): .*403/);
  const empty = await apiServer(t, 200, { items: [] });
  assert.deepEqual(await resolveServiceCidrs({ source: 'kubernetes', kubeconfig: empty }), {
    refusing: false,
    cidrs: [],
    from: 'GET /apis/networking.k8s.io/v1/servicecidrs',
    reason: 'the API server has no ServiceCIDR objects; set --service-cidrs',
  });
  const down = await resolveServiceCidrs({ source: 'kubernetes', kubeconfig: kubeconfigFor(t, 'http://127.0.0.1:1') });
  assert.equal(down.refusing, false);
  assert.match(down.reason!, /ECONNREFUSED/);
});
