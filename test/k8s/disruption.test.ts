// Disruption on a real control plane. The API server goes away for 60 s: the programmed datapath
// keeps serving east-west and north-south, /healthz stays up and reports how long the watches
// have been silent; when it returns the agents re-list and apply what changed while they were
// cut off. Then agents are killed and restarted under load: no connection fails.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { missingBinaries } from './control-plane.ts';
import { eventually, startLabCluster, type LabCluster } from './lab-cluster.ts';
import { target } from '../../src/lab/lab.ts';
import { STATUS_FILE } from '../../src/common/status-file.ts';

const missing = missingBinaries();
const skip = missing.length ? `k8s binaries not built (${missing.join(', ')}): run hack/k8s/build.sh` : false;

const VIP = { web: '10.96.51.1', gone: '10.96.51.2', late: '10.96.51.3' };
const NODE_PORT = 30410;
const OUTAGE_MS = 60_000;

function pod(name: string, node: number, labels: Record<string, string>, serves = true): object {
  const ports = serves ? [{ name: 'web', containerPort: 7000 }] : [];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels },
    spec: { nodeName: `node-${node}`, containers: [{ name: 'echo', image: 'lab/echo', ports }] },
  };
}

function service(name: string, spec: object): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: { selector: { app: 'web' }, ...spec },
  };
}

const names = (backends: Record<string, number>): string => Object.keys(backends).sort().join(',');

interface WatchStatus {
  readonly path: string;
  readonly relists: number;
  readonly restarts: number;
}

describe('Kubernetes mode under disruption', { skip, concurrency: false }, () => {
  let c: LabCluster;

  const watches = (i: number): WatchStatus[] =>
    (
      JSON.parse(fs.readFileSync(path.join(c.agents[i - 1]!.runDir, STATUS_FILE), 'utf8')) as {
        sourceStatus: { watches: WatchStatus[] };
      }
    ).sourceStatus.watches;
  const health = async (
    i: number,
  ): Promise<{ code: number; body: { sourceEventAgeSeconds?: Record<string, number> } }> => {
    const r = await c.lab.exec(c.lab.node(i), [
      'curl',
      '-s',
      '-o',
      '-',
      '-w',
      '\n%{http_code}',
      'http://127.0.0.1:10256/healthz',
    ]);
    const lines = r.stdout.trim().split('\n');
    return {
      code: Number(lines.pop()),
      body: JSON.parse(lines.join('\n') || '{}') as { sourceEventAgeSeconds?: Record<string, number> },
    };
  };

  before(async () => {
    c = await startLabCluster(2);
    await c.apply([
      pod('web-1', 1, { app: 'web' }),
      pod('web-2', 2, { app: 'web' }),
      pod('client-1', 1, { role: 'client' }, false),
      service('web', { clusterIP: VIP.web, ports: [{ name: 'http', port: 80, targetPort: 'web' }] }),
      service('gone', { clusterIP: VIP.gone, ports: [{ port: 80, targetPort: 7000 }] }),
      service('edge', { type: 'NodePort', ports: [{ port: 80, targetPort: 7000, nodePort: NODE_PORT }] }),
    ]);
    await eventually('web served by both pods', 30_000, async () =>
      names((await c.probe('client-1', VIP.web, 80)).backends) === 'web-1,web-2' ? true : undefined,
    );
    await eventually('gone served', 30_000, async () =>
      (await c.probe('client-1', VIP.gone, 80, { count: 2 })).ok === 2 ? true : undefined,
    );
  });

  after(async () => {
    await c?.[Symbol.asyncDispose]();
  });

  test('API server stopped for 60 s: the datapath keeps serving; on return the agents re-list and apply what changed', async () => {
    const relistsBefore = watches(1).map((w) => w.relists);
    await c.cp.stopApiServer();
    const started = performance.now();
    let rounds = 0;
    const reached = new Set<string>();
    try {
      while (performance.now() - started < OUTAGE_MS) {
        const east = await c.probe('client-1', VIP.web, 80, { count: 8 });
        assert.equal(east.ok, 8, `east-west during the outage: ${JSON.stringify(east)}`);
        for (const b of Object.keys(east.backends)) reached.add(b);
        const north = await c.probe('client', c.lab.node(2).externalIpv4, NODE_PORT, { count: 4 });
        assert.equal(north.ok, 4, `NodePort during the outage: ${JSON.stringify(north)}`);
        rounds++;
        await sleep(4000);
      }
      assert.deepEqual([...reached].sort(), ['web-1', 'web-2'], 'both backends kept serving');
      // Stopped programming nothing: the node stays in load balancers; the silence is reported.
      const h = await health(1);
      assert.equal(h.code, 200);
      assert.ok(
        (h.body.sourceEventAgeSeconds?.services ?? 0) >= 30,
        `event age reported: ${JSON.stringify(h.body)}`,
      );
      console.log(`# ${rounds} probe rounds during a ${OUTAGE_MS / 1000} s API server outage, all served`);
    } finally {
      // The agents are still backing off when the server returns: the changes below reach them
      // only through the re-list.
      await c.cp.startApiServer();
    }
    const back = performance.now();
    await c.kubectl(['delete', 'service', 'gone']);
    await c.apply([
      service('web', {
        clusterIP: VIP.web,
        ports: [
          { name: 'http', port: 80, targetPort: 'web' },
          { name: 'alt', port: 81, targetPort: 'web' },
        ],
      }),
      service('late', { clusterIP: VIP.late, ports: [{ port: 80, targetPort: 7000 }] }),
    ]);
    await c.kubectl(['delete', 'pod', 'web-2', '--wait=false']);
    const took: Record<string, string> = {};
    const converged = async (what: string, check: () => Promise<boolean>): Promise<void> => {
      await eventually(what, 120_000, async () => ((await check()) ? true : undefined));
      took[what] = `${((performance.now() - back) / 1000).toFixed(1)} s`;
    };
    await Promise.all([
      converged('new Service', async () => (await c.probe('client-1', VIP.late, 80, { count: 2 })).ok === 2),
      converged('new port', async () => (await c.probe('client-1', VIP.web, 81, { count: 2 })).ok === 2),
      converged(
        'deleted Service',
        async () => (await c.probe('client-1', VIP.gone, 80, { count: 1, timeoutMs: 500 })).ok === 0,
      ),
      converged('deleted Pod', async () => {
        const r = await c.probe('client-1', VIP.web, 80, { count: 12 });
        return r.ok === 12 && names(r.backends) === 'web-1';
      }),
    ]);
    console.log(`# after the API server was ready again, converged: ${JSON.stringify(took)}`);
    await eventually('the status file shows the re-list', 10_000, async () => {
      const now = watches(1);
      return now.every((w, i) => w.relists > relistsBefore[i]! && w.restarts > 0) ? now : undefined;
    });
  });

  test('agents killed and restarted under load: no connection fails, east-west or north-south', async () => {
    const east = c.probe('client-1', VIP.web, 80, { count: 1500, intervalMs: 4, timeoutMs: 2000 });
    const north = c.lab.probe('client', target(c.lab.node(2).externalIpv4, NODE_PORT), {
      count: 600,
      intervalMs: 10,
      timeoutMs: 2000,
    });
    for (let round = 0; round < 3; round++) {
      for (const i of [1, 2]) {
        await c.agents[i - 1]!.process.kill('SIGKILL');
        await sleep(100);
        await c.startAgent(i);
      }
    }
    const [e, n] = await Promise.all([east, north]);
    assert.deepEqual([e.ok, e.errors], [1500, {}]);
    assert.deepEqual([n.summaries[0]?.ok, n.summaries[0]?.errors], [600, {}]);
  });
});
