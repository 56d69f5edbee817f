// The shape of a NetworkPolicy document (networking.k8s.io/v1): every field the policy model reads
// has the JSON type it expects, each problem naming its JSON path. What the values mean (a valid
// CIDR, endPort ≥ port, a known operator) is the model's validation (src/model/policy/validate.ts),
// which names the object and field in the agent's status and keeps the previous version in force.
import {
  integerAt,
  isObject,
  objectAt,
  objectListAt,
  ShapeError,
  stringAt,
  stringListAt,
  stringMapAt,
  type JsonObject,
} from './shape.ts';

function checkSelector(parent: JsonObject, key: string, path: string): void {
  const selector = objectAt(parent, key, path);
  if (!selector) return;
  const at = `${path}.${key}`;
  stringMapAt(selector, 'matchLabels', at);
  objectListAt(selector, 'matchExpressions', at).forEach((e, i) => {
    const ep = `${at}.matchExpressions[${i}]`;
    stringAt(e, 'key', ep);
    stringAt(e, 'operator', ep);
    stringListAt(e, 'values', ep);
  });
}

function checkPeer(peer: JsonObject, at: string): void {
  checkSelector(peer, 'podSelector', at);
  checkSelector(peer, 'namespaceSelector', at);
  const block = objectAt(peer, 'ipBlock', at);
  if (!block) return;
  stringAt(block, 'cidr', `${at}.ipBlock`);
  stringListAt(block, 'except', `${at}.ipBlock`);
}

function checkPort(port: JsonObject, at: string): void {
  stringAt(port, 'protocol', at);
  const p = port['port'];
  if (p !== undefined && p !== null && typeof p !== 'string' && typeof p !== 'number')
    throw new ShapeError(`${at}.port`, 'must be a number or a port name');
  integerAt(port, 'endPort', at, 0, 65535);
}

function checkRules(spec: JsonObject, key: 'ingress' | 'egress', peers: 'from' | 'to'): void {
  objectListAt(spec, key, 'spec').forEach((rule, i) => {
    const at = `spec.${key}[${i}]`;
    objectListAt(rule, 'ports', at).forEach((port, j) => checkPort(port, `${at}.ports[${j}]`));
    objectListAt(rule, peers, at).forEach((peer, j) => checkPeer(peer, `${at}.${peers}[${j}]`));
  });
}

export function checkNetworkPolicy(doc: JsonObject): void {
  if (doc['spec'] === undefined || doc['spec'] === null) throw new ShapeError('spec', 'required');
  if (!isObject(doc['spec'])) throw new ShapeError('spec', 'must be an object');
  const spec = doc['spec'];
  checkSelector(spec, 'podSelector', 'spec');
  stringListAt(spec, 'policyTypes', 'spec');
  checkRules(spec, 'ingress', 'from');
  checkRules(spec, 'egress', 'to');
}
