import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceModel, resolve, validateService, validateEndpointSlice, type Service } from '../../../src/model/index.ts';
import { InvalidObjectError } from '../../../src/common/errors.ts';
import { ep, slice, svc } from './fixtures.ts';

const bad: [string, Service, string, RegExp][] = [
  ['port out of range', svc('a', { ports: [{ port: 70000 }] }), 'spec.ports[0].port', /not a port/],
  ['bad protocol', svc('a', { ports: [{ port: 80, protocol: 'ICMP' as 'TCP' }] }), 'spec.ports[0].protocol', /unsupported/],
  ['bad clusterIP', svc('a', { clusterIPs: ['10.96.0.300'] }), 'spec.clusterIPs[0]', /not a valid IP/],
  ['two IPv4 clusterIPs', svc('a', { clusterIPs: ['10.96.0.1', '10.96.0.2'] }), 'spec.clusterIPs[1]', /second IPv4/],
  ['unnamed port among several', svc('a', { ports: [{ port: 80, name: 'http' }, { port: 81 }] }), 'spec.ports[1].name', /required/],
  ['duplicate port name', svc('a', { ports: [{ port: 80, name: 'x' }, { port: 81, name: 'x' }] }), 'spec.ports[1].name', /duplicate/],
  ['duplicate port', svc('a', { ports: [{ port: 80, name: 'x' }, { port: 80, name: 'y' }] }), 'spec.ports[1].port', /duplicate port 80\/TCP/],
  ['bad targetPort name', svc('a', { ports: [{ port: 80, targetPort: 'Not_A_Name' }] }), 'spec.ports[0].targetPort', /IANA_SVC_NAME/],
  ['nodePort on ClusterIP', svc('a', { ports: [{ port: 80, nodePort: 30000 }] }), 'spec.ports[0].nodePort', /ClusterIP/],
  ['affinity timeout too long', svc('a', { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 90000 } } }), 'spec.sessionAffinityConfig.clientIP.timeoutSeconds', /1-86400/],
  ['bad source range', svc('a', { type: 'LoadBalancer', loadBalancerSourceRanges: ['10.0.0.0/40'] }), 'spec.loadBalancerSourceRanges[0]', /CIDR/],
  ['bad externalIP', svc('a', { externalIPs: ['nope'] }), 'spec.externalIPs[0]', /not a valid IP/],
  ['bad traffic policy', svc('a', { externalTrafficPolicy: 'Nearby' as 'Local' }), 'spec.externalTrafficPolicy', /Cluster or Local/],
  ['bad selector value', svc('a', { selector: { app: 5 as unknown as string } }), 'spec.selector.app', /string/],
  ['bad name', svc('Bad_Name', {}), 'metadata.name', /DNS subdomain/],
  ['bad selector key', svc('a', { selector: { 'bad key!': 'x' } }), 'spec.selector.bad key!', /label key/],
  ['bad selector value syntax', svc('a', { selector: { app: 'has space' } }), 'spec.selector.app', /label value/],
  ['duplicate nodePort', svc('a', { type: 'NodePort', ports: [{ name: 'a', port: 80, nodePort: 30080 }, { name: 'b', port: 81, nodePort: 30080 }] }), 'spec.ports[1].nodePort', /duplicate nodePort 30080\/TCP/],
  ['source ranges on a NodePort service', svc('a', { type: 'NodePort', loadBalancerSourceRanges: ['10.0.0.0/8'] }), 'spec.loadBalancerSourceRanges', /LoadBalancer/],
  ['healthCheckNodePort without eTP=Local', svc('a', { type: 'LoadBalancer', healthCheckNodePort: 32000 }), 'spec.healthCheckNodePort', /externalTrafficPolicy is Local/],
  ['healthCheckNodePort equal to a nodePort', svc('a', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 30080, ports: [{ port: 80, nodePort: 30080 }] }), 'spec.healthCheckNodePort', /already a nodePort/],
];

for (const [what, service, field, message] of bad) {
  test(`validation: ${what} → error naming the object and ${field}`, () => {
    const errors = validateService(service);
    const hit = errors.find((e) => e.field === field);
    assert.ok(hit, `expected an error on ${field}, got ${errors.map((e) => e.message).join('; ')}`);
    assert.ok(hit instanceof InvalidObjectError);
    assert.equal(hit.code, 'FERRY_E_INVALID_OBJECT');
    assert.match(hit.message, new RegExp(`^Service default/${service.metadata.name}: ${field.replace(/[[\].]/g, '\\$&')}: `));
    assert.match(hit.message, message);
  });
}

test('a valid service has no errors', () => {
  assert.deepEqual(validateService(svc('ok', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080, targetPort: 'http' }] })), []);
});

test('slice validation names the endpoint address that does not match the address type', () => {
  const errors = validateEndpointSlice(slice('web', 'web-a', [ep('fd00::1')], [{ port: 8080 }], { addressType: 'IPv4' }));
  assert.equal(errors[0]?.field, 'endpoints[0].addresses[0]');
});

test('a bad object among good ones: the good keep their frontends, the bad is reported; a bad edit keeps the last good version', () => {
  const model = new ServiceModel({ nodeName: 'node-1', nodeAddresses: ['172.30.0.1'] });
  const good = svc('good', { clusterIP: '10.96.0.1' });
  const first = svc('edited', { clusterIP: '10.96.0.2' });
  model.apply({ kind: 'Service', previous: undefined, current: good });
  model.apply({ kind: 'Service', previous: undefined, current: first });
  model.apply({ kind: 'Service', previous: undefined, current: svc('broken', { clusterIP: '10.96.0.3', ports: [{ port: 0 }] }) });
  model.apply({ kind: 'EndpointSlice', previous: undefined, current: slice('good', 'good-a', [ep('10.244.1.10')]) });
  model.apply({ kind: 'EndpointSlice', previous: undefined, current: slice('edited', 'edited-a', [ep('10.244.1.11')]) });
  model.sync();
  model.apply({ kind: 'Service', previous: first, current: svc('edited', { clusterIP: '10.96.0.2', ports: [{ port: 99999 }] }) });
  const { diff } = model.sync();
  assert.deepEqual(diff, { upsert: [], remove: [] }, 'the invalid edit changes nothing');
  const at = (ip: string) => resolve(model.table(), { source: 'pod', destination: ip, port: 80, protocol: 'TCP' });
  assert.ok(Array.isArray(at('10.96.0.1')));
  assert.ok(Array.isArray(at('10.96.0.2')), 'last good version of the edited service stays');
  assert.equal(at('10.96.0.3'), 'NONE');
  assert.deepEqual(model.errors().map((e) => e.object).sort(), ['Service default/broken', 'Service default/edited']);
});

test('nodePort range: checked when the cluster range is known (standalone), 1-65535 otherwise', () => {
  const service = svc('np', { type: 'NodePort', ports: [{ port: 80, nodePort: 8080 }] });
  assert.deepEqual(validateService(service), []);
  const errors = validateService(service, { nodePortRange: { min: 30000, max: 32767 } });
  assert.deepEqual(errors.map((e) => [e.field, e.message]), [['spec.ports[0].nodePort', 'Service default/np: spec.ports[0].nodePort: 8080 is outside the node port range 30000-32767']]);
  const model = new ServiceModel({ nodeName: 'node-1', nodeAddresses: ['172.30.0.1'], nodePortRange: { min: 30000, max: 32767 } });
  assert.equal(model.apply({ kind: 'Service', previous: undefined, current: service }), false);
  assert.equal(model.errors()[0]?.field, 'spec.ports[0].nodePort');
});
