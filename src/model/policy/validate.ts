// NetworkPolicy validation as the API server does it (k8s.io/kubernetes
// pkg/apis/networking/validation, with StrictIPCIDRValidation on), so that a policy the
// standalone source reads from disk is refused exactly when kubectl would have refused it. Each
// problem is an InvalidObjectError naming `NetworkPolicy ns/name` and the JSON path of the field,
// the same style as Service validation (src/model/validate.ts); the caller keeps the previous
// valid version in force.
import { InvalidObjectError } from '../../common/errors.ts';
import { parseCidr, parseIp, type Cidr } from '../../common/ip.ts';
import type { IPBlock, LabelSelector, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort } from './api.ts';
import { isLabelKey, isLabelValue, isPortName, DNS_LABEL, DNS_SUBDOMAIN } from './names.ts';
import { Problems } from '../problems.ts';

const PROTOCOLS = new Set(['TCP', 'UDP', 'SCTP']);
const POLICY_TYPES = new Set(['Ingress', 'Egress']);

export function describePolicy(policy: NetworkPolicy): string {
  return `NetworkPolicy ${policy.metadata?.namespace ?? 'default'}/${policy.metadata?.name ?? '?'}`;
}

export function validateNetworkPolicy(policy: NetworkPolicy): InvalidObjectError[] {
  const p = new Problems(describePolicy(policy));
  const meta = policy.metadata;
  if (!meta || typeof meta.name !== 'string' || meta.name === '') p.add('metadata.name', 'required');
  else if (meta.name.length > 253 || !DNS_SUBDOMAIN.test(meta.name))
    p.add('metadata.name', `"${meta.name}" is not a valid DNS subdomain`);
  if (
    meta?.namespace !== undefined &&
    (typeof meta.namespace !== 'string' || !DNS_LABEL.test(meta.namespace))
  ) {
    p.add('metadata.namespace', `"${String(meta.namespace)}" is not a valid DNS label`);
  }
  const spec = policy.spec;
  if (!spec || typeof spec !== 'object') {
    p.add('spec', 'required');
    return p.list;
  }
  if (spec.podSelector === undefined || spec.podSelector === null)
    p.add('spec.podSelector', 'required (use {} to select every pod)');
  else checkSelector(p, spec.podSelector, 'spec.podSelector');
  checkRules(p, spec.ingress, 'spec.ingress', 'from');
  checkRules(p, spec.egress, 'spec.egress', 'to');
  checkPolicyTypes(p, spec.policyTypes);
  return p.list;
}

function checkRules(p: Problems, rules: unknown, f: string, peersField: 'from' | 'to'): void {
  if (rules === undefined) return;
  if (!Array.isArray(rules)) {
    p.add(f, 'must be a list');
    return;
  }
  rules.forEach((rule: Record<string, unknown> | null, i) => {
    const rf = `${f}[${i}]`;
    if (typeof rule !== 'object' || rule === null) {
      p.add(rf, 'must be an object');
      return;
    }
    checkList<NetworkPolicyPort>(p, rule['ports'], `${rf}.ports`, checkPort);
    checkList<NetworkPolicyPeer>(p, rule[peersField], `${rf}.${peersField}`, checkPeer);
  });
}

function checkList<T>(
  p: Problems,
  list: unknown,
  f: string,
  check: (p: Problems, item: T, f: string) => void,
): void {
  if (list === undefined || list === null) return;
  if (!Array.isArray(list)) p.add(f, 'must be a list');
  else list.forEach((item: T, i) => check(p, item, `${f}[${i}]`));
}

function isPortNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
}

function checkPort(p: Problems, port: NetworkPolicyPort, f: string): void {
  if (typeof port !== 'object' || port === null) {
    p.add(f, 'must be an object');
    return;
  }
  if (port.protocol !== undefined && !PROTOCOLS.has(port.protocol)) {
    p.add(`${f}.protocol`, `unsupported value "${String(port.protocol)}" (TCP, UDP or SCTP)`);
  }
  const end = port.endPort;
  if (port.port === undefined) {
    if (end !== undefined) p.add(`${f}.endPort`, 'may not be specified when `port` is not specified');
  } else if (typeof port.port === 'string') {
    if (end !== undefined) p.add(`${f}.endPort`, 'may not be specified when `port` is non-numeric');
    if (!isPortName(port.port)) p.add(`${f}.port`, `"${port.port}" is not a valid port name (IANA_SVC_NAME)`);
  } else {
    if (!isPortNumber(port.port)) p.add(`${f}.port`, `${String(port.port)} is not a port (1-65535)`);
    if (end !== undefined) {
      if (typeof end === 'number' && typeof port.port === 'number' && end < port.port) {
        p.add(`${f}.endPort`, `${end} must be greater than or equal to \`port\` (${port.port})`);
      }
      if (!isPortNumber(end)) p.add(`${f}.endPort`, `${String(end)} is not a port (1-65535)`);
    }
  }
}

function checkPeer(p: Problems, peer: NetworkPolicyPeer, f: string): void {
  if (typeof peer !== 'object' || peer === null) {
    p.add(f, 'must be an object');
    return;
  }
  let kinds = 0;
  if (peer.podSelector !== undefined && peer.podSelector !== null) {
    kinds++;
    checkSelector(p, peer.podSelector, `${f}.podSelector`);
  }
  if (peer.namespaceSelector !== undefined && peer.namespaceSelector !== null) {
    kinds++;
    checkSelector(p, peer.namespaceSelector, `${f}.namespaceSelector`);
  }
  if (peer.ipBlock !== undefined && peer.ipBlock !== null) {
    kinds++;
    checkIpBlock(p, peer.ipBlock, `${f}.ipBlock`);
  }
  if (kinds === 0) p.add(f, 'must specify a peer');
  else if (kinds > 1 && peer.ipBlock) p.add(f, 'may not specify both ipBlock and another peer');
}

/** A CIDR as the strict legacy-field rule reads it; the parsed prefix, or undefined after a problem. */
function checkCidr(p: Problems, text: unknown, f: string): Cidr | undefined {
  if (typeof text !== 'string') {
    p.add(f, 'must be a string');
    return undefined;
  }
  const slash = text.indexOf('/');
  const ip = slash < 0 ? undefined : parseIp(text.slice(0, slash));
  // parseCidr reads ::ffff:a.b.c.d as IPv4, so the mapped form is caught on the address first.
  if (ip && ip.family === 4 && text.slice(0, slash).includes(':')) {
    p.add(f, `"${text}" must not have an IPv4-mapped IPv6 address`);
    return undefined;
  }
  const cidr = parseCidr(text);
  if (!cidr || !ip) {
    p.add(f, `"${text}" is not a valid CIDR (e.g. 10.9.8.0/24 or 2001:db8::/64; no leading 0s)`);
    return undefined;
  }
  if (ip.bytes.some((b, i) => b !== cidr.address.bytes[i])) {
    p.add(f, `"${text}" must not have bits set beyond the prefix length`);
    return undefined;
  }
  return cidr;
}

function checkIpBlock(p: Problems, block: IPBlock, f: string): void {
  if (typeof block.cidr !== 'string' || block.cidr === '') {
    p.add(`${f}.cidr`, 'required');
    return;
  }
  const cidr = checkCidr(p, block.cidr, `${f}.cidr`);
  checkList<string>(p, block.except, `${f}.except`, (p, text, ef) => {
    const except = checkCidr(p, text, ef);
    if (!cidr || !except) return;
    if (
      except.address.family !== cidr.address.family ||
      except.prefix <= cidr.prefix ||
      !within(cidr, except)
    ) {
      p.add(ef, `"${text}" must be a strict subset of \`cidr\` (${block.cidr})`);
    }
  });
}

function within(outer: Cidr, inner: Cidr): boolean {
  const bits = (outer.address.family === 4 ? 96 : 0) + outer.prefix;
  for (let i = 0; i < bits; i++) {
    const mask = 0x80 >> (i % 8);
    if ((outer.address.bytes[i >> 3]! & mask) !== (inner.address.bytes[i >> 3]! & mask)) return false;
  }
  return true;
}

function checkSelector(p: Problems, selector: LabelSelector, f: string): void {
  if (typeof selector !== 'object' || Array.isArray(selector)) {
    p.add(f, 'must be a label selector');
    return;
  }
  const labels = selector.matchLabels ?? {};
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels))
    p.add(`${f}.matchLabels`, 'must be a map of labels');
  else {
    for (const [k, v] of Object.entries(labels)) {
      if (!isLabelKey(k)) p.add(`${f}.matchLabels.${k}`, `"${k}" is not a valid label key`);
      else if (typeof v !== 'string') p.add(`${f}.matchLabels.${k}`, 'must be a string');
      else if (!isLabelValue(v)) p.add(`${f}.matchLabels.${k}`, `"${v}" is not a valid label value`);
    }
  }
  checkList<NonNullable<LabelSelector['matchExpressions']>[number]>(
    p,
    selector.matchExpressions,
    `${f}.matchExpressions`,
    (p, r, ef) => {
      if (typeof r.key !== 'string' || !isLabelKey(r.key))
        p.add(`${ef}.key`, `"${String(r.key)}" is not a valid label key`);
      const values = r.values ?? [];
      if (r.operator === 'In' || r.operator === 'NotIn') {
        if (values.length === 0)
          p.add(`${ef}.values`, "must be specified when `operator` is 'In' or 'NotIn'");
      } else if (r.operator === 'Exists' || r.operator === 'DoesNotExist') {
        if (values.length > 0)
          p.add(`${ef}.values`, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
      } else {
        p.add(
          `${ef}.operator`,
          `unsupported value "${String(r.operator)}" (In, NotIn, Exists or DoesNotExist)`,
        );
      }
      values.forEach((v, j) => {
        if (typeof v !== 'string' || !isLabelValue(v))
          p.add(`${ef}.values[${j}]`, `"${String(v)}" is not a valid label value`);
      });
    },
  );
}

function checkPolicyTypes(p: Problems, types: unknown): void {
  if (types === undefined) return;
  if (!Array.isArray(types)) {
    p.add('spec.policyTypes', 'must be a list');
    return;
  }
  // As upstream: more than two is refused outright, before the values are looked at.
  if (types.length > 2) {
    p.add('spec.policyTypes', 'may not specify more than two policyTypes');
    return;
  }
  types.forEach((t: unknown, i) => {
    if (typeof t !== 'string' || !POLICY_TYPES.has(t))
      p.add(`spec.policyTypes[${i}]`, `unsupported value "${String(t)}" (Ingress or Egress)`);
  });
}
