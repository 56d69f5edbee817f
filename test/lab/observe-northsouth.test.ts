// `ferry observe` on the packet path: the external client provokes each north-south verdict and
// reason through the agents' tc programs — a forwarded NodePort flow (and its reply), eTP=Local
// without a local backend, a LoadBalancer source range that excludes the client, a Service with
// no endpoints — and each is then found with the matching filter, naming the Service.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createLab, target, type Lab } from '../../src/lab/index.ts';
import { agentRunDir, startNodeAgent } from '../../src/lab/agents.ts';
import type { Flow } from '../../src/observe/flow.ts';
import { eventually } from '../support/eventually.ts';
import { nodePortService, readyPod, writeManifests } from './support/manifests.ts';

const FERRY = fileURLToPath(new URL('../../bin/ferry', import.meta.url));
const run = promisify(execFile);
const LB_IP = '198.19.0.50';

describe('ferry observe: north-south verdicts', { concurrency: false }, () => {
  let lab: Lab;
  let dir: string;

  /** Flows on a node's agent matching the filter flags. */
  const observe = async (node: string, ...filters: string[]): Promise<Flow[]> => {
    const { stdout } = await run(FERRY, [
      'observe',
      '--run-dir',
      agentRunDir(lab.node(node)),
      '--last',
      '500',
      '-o',
      'json',
      ...filters,
    ]);
    return stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Flow);
  };
  /** Events reach the agent in batches; wait until the wanted flow shows up. */
  const until = (node: string, filters: string[], want: (f: Flow) => boolean): Promise<Flow> =>
    eventually(
      async () => {
        const found = (await observe(node, ...filters)).find(want);
        if (found) return found;
        assert.fail(`no flow on ${node} for ${filters.join(' ')}: ${JSON.stringify(await observe(node))}`);
      },
      { timeoutMs: 5000, intervalMs: 100 },
    );

  before(async () => {
    lab = await createLab({ nodes: 2, podsPerNode: 1 });
    const docs = [
      readyPod(lab.pod('n1-p1'), { app: 'web', here: 'n1' }),
      readyPod(lab.pod('n2-p1'), { app: 'web' }),
      nodePortService('web', '10.96.22.1', { app: 'web' }, 30201),
      nodePortService('local', '10.96.22.2', { here: 'n1' }, 30202, { externalTrafficPolicy: 'Local' }),
      nodePortService(
        'fenced',
        '10.96.22.3',
        { app: 'web' },
        30203,
        { type: 'LoadBalancer', loadBalancerSourceRanges: ['203.0.113.0/24'] },
        { status: { loadBalancer: { ingress: [{ ip: LB_IP }] } } },
      ),
      nodePortService('empty', '10.96.22.4', { app: 'nobody' }, 30204),
    ];
    dir = writeManifests('ferry-obs-ns-', docs);
    await Promise.all(lab.pods.map((p) => lab.startEchoServer(p, { tcp: [7000], udp: [], http: [] })));
    for (const node of lab.nodes) await startNodeAgent(lab, node, { manifests: dir });
    await lab.addClientRoute(`${LB_IP}/32`, lab.node('n1'));
  });

  after(async () => {
    await lab?.down();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a NodePort flow: FORWARDED new with its backend, and its reply', async () => {
    const r = await lab.probe('client', target(lab.node('n1').externalIpv4, 30201), { count: 6 });
    assert.equal(r.summaries[0]?.ok, 6);
    const fwd = await until(
      'n1',
      ['--verdict', 'FORWARDED', '--service', 'default/web', '--from-ip', lab.client.ipv4],
      (f) => f.ctState === 'new',
    );
    assert.equal(fwd.origin, 'tc-ingress');
    assert.equal(fwd.destination.port, 30201);
    assert.ok(fwd.flags.includes('dnat'));
    assert.ok(['n1-p1', 'n2-p1'].includes(fwd.backend?.pod ?? ''), JSON.stringify(fwd));
    await until(
      'n1',
      ['--verdict', 'FORWARDED', '--port', '30201'],
      (f) => f.ctState === 'reply' && f.flags.includes('revnat'),
    );
  });

  test('eTP=Local on a node without a local backend: DROPPED / NO_LOCAL_BACKEND', async () => {
    const r = await lab.probe('client', target(lab.node('n2').externalIpv4, 30202), {
      count: 1,
      timeoutMs: 500,
    });
    assert.equal(r.summaries[0]?.ok, 0);
    const f = await until('n2', ['--drop-reason', 'NO_LOCAL_BACKEND'], () => true);
    assert.deepEqual(
      [f.verdict, f.service?.name, f.source.ip, f.destination.port],
      ['DROPPED', 'local', lab.client.ipv4, 30202],
    );
    // The node with the backend served it, and recorded no such drop.
    assert.equal(
      (await lab.probe('client', target(lab.node('n1').externalIpv4, 30202), { count: 2 })).summaries[0]?.ok,
      2,
    );
    assert.deepEqual(await observe('n1', '--drop-reason', 'NO_LOCAL_BACKEND'), []);
  });

  test('a client outside loadBalancerSourceRanges: DROPPED / SOURCE_RANGE on the LB IP', async () => {
    const r = await lab.probe('client', target(LB_IP, 80), { count: 1, timeoutMs: 500 });
    assert.equal(r.summaries[0]?.ok, 0);
    const f = await until('n1', ['--verdict', 'DROPPED', '--drop-reason', 'SOURCE_RANGE'], () => true);
    assert.deepEqual([f.service?.name, f.destination.ip, f.destination.port], ['fenced', LB_IP, 80]);
  });

  test('a Service without endpoints: REJECTED / NO_BACKEND, and the client is refused at once', async () => {
    const r = await lab.probe('client', target(lab.node('n1').externalIpv4, 30204), {
      count: 1,
      timeoutMs: 2000,
    });
    assert.deepEqual(r.summaries[0]?.errors, { ECONNREFUSED: 1 });
    const f = await until('n1', ['--verdict', 'REJECTED'], (x) => x.destination.port === 30204);
    assert.deepEqual([f.reason, f.service?.name], ['NO_BACKEND', 'empty']);
    // --not: every other flow on node-1 that is not a reject.
    const others = await observe('n1', '--not', '--verdict', 'REJECTED');
    assert.ok(others.length > 0 && others.every((x) => x.verdict !== 'REJECTED'));
  });
});
