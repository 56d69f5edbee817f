// The real control plane: the EndpointSlice controller turns a Service plus Pods whose status we
// set by hand (there is no kubelet) into a slice; stop() leaves no process and no temp dir behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { missingBinaries, startControlPlane, type ControlPlane } from './control-plane.ts';

const missing = missingBinaries();
const skip = missing.length ? `k8s binaries not built (${missing.join(', ')}): run hack/k8s/build.sh` : false;

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface SliceEndpoint {
  readonly addresses: readonly string[];
  readonly conditions?: { readonly ready?: boolean };
  readonly targetRef?: { readonly name?: string };
  readonly nodeName?: string;
}
interface Slice {
  readonly addressType: string;
  readonly endpoints?: readonly SliceEndpoint[];
  readonly ports?: readonly { readonly port?: number; readonly name?: string }[];
}

async function setPodStatus(cp: ControlPlane, name: string, ip: string, ready: boolean): Promise<void> {
  const status = {
    phase: 'Running',
    podIP: ip,
    podIPs: [{ ip }],
    conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
  };
  await cp.kubectl([
    'patch',
    'pod',
    name,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status }),
  ]);
}

test(
  'EndpointSlice controller publishes a slice for hand-made Pods; stop() cleans up',
  { skip },
  async (t) => {
    const cp = await startControlPlane();
    t.after(() => cp.stop());
    t.diagnostic(`control plane ready in ${Math.round(cp.startupMs)} ms at ${cp.server}`);

    // The ServiceAccount admission plugin rejects Pods until the controller has made `default`.
    await until('default ServiceAccount', 60_000, async () => {
      const r = await cp.kubectl(['get', 'serviceaccount', 'default', '-o', 'name'], { allowFailure: true });
      return r.code === 0 ? true : undefined;
    });

    const id = randomBytes(3).toString('hex');
    const node = `node-${id}`;
    const app = `web-${id}`;
    const pod = (name: string): object => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels: { app } },
      spec: {
        nodeName: node,
        containers: [{ name: 'c', image: 'registry.invalid/none:1', ports: [{ containerPort: 8080 }] }],
      },
    });
    const manifest = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        // The controller skips endpoints whose Node it cannot find.
        { apiVersion: 'v1', kind: 'Node', metadata: { name: node } },
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: app },
          spec: { selector: { app }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
        },
        pod(`${app}-a`),
        pod(`${app}-b`),
      ],
    };
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
    await setPodStatus(cp, `${app}-a`, '10.244.1.10', true);
    await setPodStatus(cp, `${app}-b`, '10.244.1.11', false);

    const slice = await until('EndpointSlice with both Pods', 60_000, async () => {
      const r = await cp.kubectl([
        'get',
        'endpointslices',
        '-l',
        `kubernetes.io/service-name=${app}`,
        '-o',
        'json',
      ]);
      const items = (JSON.parse(r.stdout) as { items: Slice[] }).items.filter(
        (s) => s.addressType === 'IPv4',
      );
      const s = items[0];
      return s && (s.endpoints?.length ?? 0) === 2 ? s : undefined;
    });

    const byIp = new Map(slice.endpoints?.map((e) => [e.addresses[0], e]));
    assert.deepEqual([...byIp.keys()].sort(), ['10.244.1.10', '10.244.1.11']);
    assert.equal(byIp.get('10.244.1.10')?.conditions?.ready, true);
    assert.equal(byIp.get('10.244.1.11')?.conditions?.ready, false);
    assert.equal(byIp.get('10.244.1.10')?.targetRef?.name, `${app}-a`);
    assert.equal(byIp.get('10.244.1.10')?.nodeName, node);
    assert.deepEqual(
      slice.ports?.map((p) => [p.name, p.port]),
      [['http', 8080]],
    );

    // Readiness flips follow the Pod's status.
    await setPodStatus(cp, `${app}-b`, '10.244.1.11', true);
    await until('pod b ready in the slice', 30_000, async () => {
      const r = await cp.kubectl([
        'get',
        'endpointslices',
        '-l',
        `kubernetes.io/service-name=${app}`,
        '-o',
        'json',
      ]);
      const items = (JSON.parse(r.stdout) as { items: Slice[] }).items;
      const ep = items.flatMap((s) => s.endpoints ?? []).find((e) => e.addresses[0] === '10.244.1.11');
      return ep?.conditions?.ready === true ? true : undefined;
    });

    await cp.stop();
    assert.deepEqual(cp.pids.filter(alive), [], 'no control-plane process survives stop()');
    assert.equal(existsSync(cp.dir), false, 'temp dir removed');
  },
);
