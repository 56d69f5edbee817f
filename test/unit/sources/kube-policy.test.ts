// The Kubernetes source's policy watches against an in-memory API (the KubeApi interface the
// list-watch uses; the HTTP fake in test/unit/kube serves one resource, these need several):
// networkpolicies, namespaces and pods listed and watched cluster-wide, each object projected as
// it arrives, a status-only Pod update not delivered, 410 Gone answered by a re-list that reports
// what changed meanwhile, and Services served whether or not the policy watches can list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeApiError } from '../../../src/sources/kube/client.ts';
import type { KubeApi, ObjectWithMeta } from '../../../src/sources/kube/list-watch.ts';
import { KubeSource, type KubeChange, type PolicyChange } from '../../../src/sources/kube/source.ts';
import { POLICY_PATHS } from '../../../src/sources/kube/policy-watches.ts';
import { eventually } from '../../support/eventually.ts';

type Obj = { readonly metadata: ObjectWithMeta['metadata'] & Record<string, unknown> } & Record<string, unknown>;

interface Watcher {
  readonly queue: unknown[];
  wake: () => void;
}

/** Collections by path; a watch is a queue of events; `forbid` makes a path answer 403. */
class MemoryApi implements KubeApi {
  readonly collections = new Map<string, Map<string, Obj>>();
  readonly requests: string[] = [];
  readonly forbid = new Set<string>();
  #rv = 1;
  #watchers = new Map<string, Set<Watcher>>();

  put(path: string, object: Obj): void {
    const store = this.#collection(path);
    const key = `${object.metadata.namespace ?? ''}/${object.metadata.name}`;
    const type = store.has(key) ? 'MODIFIED' : 'ADDED';
    const stored = { ...object, metadata: { ...object.metadata, resourceVersion: String(++this.#rv) } };
    store.set(key, stored);
    this.#send(path, { type, object: stored });
  }

  remove(path: string, namespace: string | undefined, name: string, silently = false): void {
    const key = `${namespace ?? ''}/${name}`;
    const gone = this.#collection(path).get(key)!;
    this.#collection(path).delete(key);
    ++this.#rv;
    if (!silently) this.#send(path, { type: 'DELETED', object: gone });
  }

  /** Every open watch of `path` ends with 410 Gone, as after etcd compaction. */
  expire(path: string): void {
    this.#send(path, { type: 'ERROR', object: { code: 410, message: 'too old resource version' } });
  }

  getJson<T>(path: string): Promise<T> {
    const base = path.split('?')[0]!;
    this.requests.push(base);
    if (this.forbid.has(base)) return Promise.reject(new KubeApiError(base, 403, 'Forbidden', 'no RBAC'));
    const items = [...this.#collection(base).values()];
    return Promise.resolve({ metadata: { resourceVersion: String(this.#rv) }, items } as T);
  }

  async *watchLines(path: string, signal: AbortSignal): AsyncGenerator<unknown> {
    const base = path.split('?')[0]!;
    const w: Watcher = { queue: [], wake: () => undefined };
    const set = this.#watchers.get(base) ?? new Set();
    this.#watchers.set(base, set.add(w));
    try {
      while (!signal.aborted) {
        if (w.queue.length === 0) {
          await new Promise<void>((resolve) => {
            w.wake = resolve;
            signal.addEventListener('abort', () => resolve(), { once: true });
          });
          continue;
        }
        yield w.queue.shift();
      }
    } finally {
      set.delete(w);
    }
  }

  #collection(path: string): Map<string, Obj> {
    let c = this.collections.get(path);
    if (!c) this.collections.set(path, (c = new Map()));
    return c;
  }

  #send(path: string, event: unknown): void {
    for (const w of this.#watchers.get(path) ?? []) {
      w.queue.push(event);
      w.wake();
    }
  }
}

const NODE = { metadata: { name: 'node-1' }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.1' }] } };

function pod(name: string, labels: Record<string, string>, phase = 'Running', extra: Record<string, unknown> = {}): Obj {
  return {
    metadata: { name, namespace: 'shop', labels, managedFields: [{ manager: 'kubelet', fieldsV1: { big: 'x'.repeat(500) } }] },
    spec: { nodeName: 'node-2', containers: [{ name: 'c', image: 'nginx', ports: [{ name: 'http', containerPort: 8080 }] }] },
    status: { phase, podIP: '10.244.2.5', podIPs: [{ ip: '10.244.2.5' }], ...extra },
  };
}

function start(api: MemoryApi, withPolicy = true): { source: KubeSource; changes: PolicyChange[]; model: KubeChange[] } {
  const changes: PolicyChange[] = [];
  const model: KubeChange[] = [];
  const source = new KubeSource(api, {
    nodeName: 'node-1',
    onChange: (c) => model.push(c),
    ...(withPolicy ? { onPolicyChange: (c: PolicyChange) => changes.push(c) } : {}),
  });
  return { source, changes, model };
}

test('policies, namespaces and pods are listed cluster-wide and delivered projected; the Service kinds never carry them', async (t) => {
  const api = new MemoryApi();
  api.put('/api/v1/nodes', NODE);
  api.put(POLICY_PATHS.NetworkPolicy, {
    metadata: { name: 'deny', namespace: 'shop', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } },
    spec: { podSelector: {} },
  });
  api.put(POLICY_PATHS.Namespace, { metadata: { name: 'shop', labels: { team: 'a' } }, status: { phase: 'Active' } });
  api.put(POLICY_PATHS.PolicyPod, pod('web-1', { app: 'web' }));
  const { source, changes, model } = start(api);
  t.after(() => source.close());
  await source.ready;
  await source.policySynced;
  assert.ok(model.every((c) => c.kind === 'Node'), 'only the Node reaches the Service kinds');
  const byKind = new Map(changes.map((c) => [c.kind, c.current]));
  assert.deepEqual(byKind.get('Namespace'), { name: 'shop', labels: { team: 'a' } });
  assert.deepEqual(byKind.get('PolicyPod'), {
    namespace: 'shop',
    name: 'web-1',
    labels: { app: 'web' },
    ips: ['10.244.2.5'],
    node: 'node-2',
    ports: [{ name: 'http', containerPort: 8080 }],
  });
  const policy = byKind.get('NetworkPolicy') as { metadata: Record<string, unknown> };
  assert.deepEqual(Object.keys(policy.metadata).sort(), ['name', 'namespace', 'resourceVersion'], 'annotations dropped');
  const paths = source.status().watches.map((w) => w.path);
  for (const p of Object.values(POLICY_PATHS)) assert.ok(paths.includes(p), p);
});

test('a Pod update that moves nothing policy reads is not delivered; a relabel and a delete are', async (t) => {
  const api = new MemoryApi();
  api.put('/api/v1/nodes', NODE);
  api.put(POLICY_PATHS.PolicyPod, pod('web-1', { app: 'web' }));
  const { source, changes } = start(api);
  t.after(() => source.close());
  await source.policySynced;
  changes.length = 0;
  api.put(POLICY_PATHS.PolicyPod, pod('web-1', { app: 'web' }, 'Running', { conditions: [{ type: 'Ready', status: 'True' }] }));
  api.put(POLICY_PATHS.PolicyPod, pod('web-1', { app: 'api' }));
  await eventually(() => assert.equal(changes.length, 1));
  assert.deepEqual(changes[0]!.previous && (changes[0]!.previous as { labels: object }).labels, { app: 'web' });
  assert.deepEqual((changes[0]!.current as { labels: object }).labels, { app: 'api' });
  api.remove(POLICY_PATHS.PolicyPod, 'shop', 'web-1');
  await eventually(() => assert.equal(changes.length, 2));
  assert.equal(changes[1]!.current, undefined);
  assert.equal((changes[1]!.previous as { name: string }).name, 'web-1');
});

test('410 Gone on the policy watch re-lists, and what was deleted meanwhile arrives as a delete', async (t) => {
  const api = new MemoryApi();
  api.put('/api/v1/nodes', NODE);
  api.put(POLICY_PATHS.NetworkPolicy, { metadata: { name: 'a', namespace: 'shop' }, spec: { podSelector: {} } });
  api.put(POLICY_PATHS.NetworkPolicy, { metadata: { name: 'b', namespace: 'shop' }, spec: { podSelector: {} } });
  const { source, changes } = start(api);
  t.after(() => source.close());
  await source.policySynced;
  changes.length = 0;
  const lists = (): number => api.requests.filter((r) => r === POLICY_PATHS.NetworkPolicy).length;
  const before = lists();
  api.remove(POLICY_PATHS.NetworkPolicy, 'shop', 'a', true); // missed by the watch
  api.expire(POLICY_PATHS.NetworkPolicy);
  await eventually(() => assert.equal(changes.length, 1));
  assert.equal(lists(), before + 1, 'one re-list');
  assert.equal(changes[0]!.kind, 'NetworkPolicy');
  assert.equal(changes[0]!.current, undefined);
  assert.equal((changes[0]!.previous as { metadata: { name: string } }).metadata.name, 'a');
  const status = source.status().watches.find((w) => w.path === POLICY_PATHS.NetworkPolicy)!;
  assert.equal(status.objects, 1);
  assert.equal(status.relists, 2);
});

test('Services are served without the policy watches: not watched when not asked, and a forbidden one does not hold the first sync', async (t) => {
  const api = new MemoryApi();
  api.put('/api/v1/nodes', NODE);
  const off = start(api, false);
  t.after(() => off.source.close());
  await off.source.ready;
  assert.deepEqual(
    api.requests.filter((r) => (Object.values(POLICY_PATHS) as string[]).includes(r)),
    [],
  );

  const denied = new MemoryApi();
  denied.put('/api/v1/nodes', NODE);
  denied.forbid.add(POLICY_PATHS.NetworkPolicy);
  const on = start(denied);
  t.after(() => on.source.close());
  await on.source.ready;
  await eventually(() => assert.match(on.source.status().watches.find((w) => w.path === POLICY_PATHS.NetworkPolicy)!.lastError ?? '', /403 Forbidden/));
  assert.equal(on.source.status().synced, true);
});
