// Pod → PolicyPod, the projection both sources make at their boundary: exactly the fields policy
// reads, addresses as the datapath will key them, nothing a finished or hostNetwork pod no longer owns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod } from '../../../src/model/k8s.ts';
import { policyNamespaceOf, policyNodeOf, policyPodOf, slimPolicyOf } from '../../../src/model/policy-pod.ts';

const pod = (over: { spec?: Partial<Pod['spec']>; status?: Pod['status']; namespace?: string } = {}): Pod => ({
  metadata: {
    name: 'web-1',
    ...(over.namespace !== undefined ? { namespace: over.namespace } : {}),
    labels: { app: 'web' },
    resourceVersion: '7',
    annotations: { big: 'x'.repeat(100) },
  },
  spec: {
    nodeName: 'node-2',
    containers: [
      { name: 'a', ports: [{ name: 'http', containerPort: 8080 }, { containerPort: 9100 }] },
      { name: 'b', ports: [{ name: 'dns', containerPort: 53, protocol: 'UDP' }] },
    ],
    ...over.spec,
  },
  status: over.status ?? { phase: 'Running', podIP: '10.0.0.9', podIPs: [{ ip: '10.0.0.9' }, { ip: '2001:DB8::9' }] },
});

test('a running pod keeps namespace, name, labels, canonical IPs, node and named ports only', () => {
  assert.deepEqual(policyPodOf(pod({ namespace: 'shop' })), {
    namespace: 'shop',
    name: 'web-1',
    labels: { app: 'web' },
    ips: ['10.0.0.9', '2001:db8::9'],
    node: 'node-2',
    ports: [
      { name: 'http', containerPort: 8080 },
      { name: 'dns', containerPort: 53, protocol: 'UDP' },
    ],
  });
});

test('addresses: podIP when podIPs is absent, none before one is assigned, after the pod finished, or on the host network', () => {
  assert.equal(policyPodOf(pod()).namespace, 'default');
  assert.deepEqual(policyPodOf(pod({ status: { phase: 'Running', podIP: '10.0.0.3' } })).ips, ['10.0.0.3']);
  assert.deepEqual(policyPodOf(pod({ status: { phase: 'Pending' } })).ips, []);
  assert.deepEqual(policyPodOf(pod({ status: { phase: 'Succeeded', podIP: '10.0.0.3' } })).ips, []);
  assert.deepEqual(policyPodOf(pod({ status: { phase: 'Failed', podIPs: [{ ip: '10.0.0.3' }] } })).ips, []);
  assert.deepEqual(policyPodOf(pod({ spec: { hostNetwork: true } })).ips, []);
  assert.deepEqual(policyPodOf(pod({ status: { phase: 'Running', podIPs: [{ ip: 'bogus' }, { ip: '10.0.0.4' }, { ip: '10.0.0.4' }] } })).ips, ['10.0.0.4']);
});

test('Namespace, Node and NetworkPolicy projections keep what policy reads', () => {
  assert.deepEqual(policyNamespaceOf({ metadata: { name: 'shop', labels: { team: 'a' }, resourceVersion: '3' } }), { name: 'shop', labels: { team: 'a' } });
  assert.deepEqual(policyNamespaceOf({ metadata: { name: 'bare' } }), { name: 'bare', labels: {} });
  assert.deepEqual(
    policyNodeOf({
      metadata: { name: 'n1' },
      status: {
        addresses: [
          { type: 'Hostname', address: 'n1' },
          { type: 'InternalIP', address: '192.168.1.10' },
          { type: 'ExternalIP', address: '2001:DB8::1' },
        ],
      },
    }),
    { name: 'n1', addresses: ['192.168.1.10', '2001:db8::1'] },
  );
  const raw = {
    metadata: { name: 'p', namespace: 'shop', uid: 'u', resourceVersion: '9', annotations: { a: 'b' }, managedFields: [{}] },
    spec: { podSelector: {} },
  };
  assert.deepEqual(slimPolicyOf(raw as Parameters<typeof slimPolicyOf>[0]), {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'p', namespace: 'shop', uid: 'u', resourceVersion: '9' },
    spec: { podSelector: {} },
  });
});
