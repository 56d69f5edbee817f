// Turns the text of one manifest file into objects, the way `kubectl apply -f` would read it:
// multi-document YAML (JSON is YAML), `kind: List` unwrapped, the namespace defaulted. Only the
// shape Ferry needs is checked here (types of the fields the allocators and the EndpointSlice
// builder read); what a Service means is the model's business. A bad document is reported with
// its file, document number and field, and never stops the others.
import { parseAllDocuments } from 'yaml';
import type { EndpointSlice, Node, Pod, Service } from '../../model/k8s.ts';
import type { Namespace } from '../../model/policy-pod.ts';
import type { NetworkPolicy } from '../../model/policy/api.ts';
import { checkNetworkPolicy } from './parse-policy.ts';
import {
  integerAt,
  ipAt,
  isObject,
  objectAt,
  objectListAt,
  ShapeError,
  stringAt,
  stringListAt,
  stringMapAt,
  type JsonObject,
} from './shape.ts';

export const DEFAULT_NAMESPACE = 'default';

/** One problem with the directory, as `ferry status` shows it. */
export interface ManifestIssue {
  /** Path relative to the manifest directory. */
  readonly file: string;
  /** 1-based document number in the file; undefined for a problem with the whole file. */
  readonly document?: number;
  /** `Kind namespace/name` when the document got that far. */
  readonly object?: string;
  /** JSON path of the field at fault, e.g. `spec.ports[1].port`. */
  readonly field?: string;
  readonly message: string;
}

/** `services.yaml#2: metadata.name: required`. */
export function formatIssue(issue: ManifestIssue): string {
  const where = issue.document === undefined ? issue.file : `${issue.file}#${issue.document}`;
  const what = issue.object ? ` ${issue.object}` : '';
  const field = issue.field ? ` ${issue.field}:` : '';
  return `${where}:${what}${field} ${issue.message}`;
}

export type UsedObject =
  | { readonly kind: 'Service'; readonly object: Service }
  | { readonly kind: 'EndpointSlice'; readonly object: EndpointSlice }
  | { readonly kind: 'Pod'; readonly object: Pod }
  | { readonly kind: 'Node'; readonly object: Node }
  | { readonly kind: 'NetworkPolicy'; readonly object: NetworkPolicy }
  | { readonly kind: 'Namespace'; readonly object: Namespace };

export type ManifestKind = UsedObject['kind'];

export interface ParsedObject {
  readonly file: string;
  readonly document: number;
  /** `Kind namespace/name`, or `Node name` for the cluster-scoped Node. */
  readonly identity: string;
  readonly entry: UsedObject;
}

/** A well-formed object of a kind Ferry does not use yet (ConfigMap, Deployment …). */
export interface KeptObject {
  readonly file: string;
  readonly document: number;
  readonly identity: string;
  readonly kind: string;
}

export interface FileParse {
  readonly objects: readonly ParsedObject[];
  readonly kept: readonly KeptObject[];
  readonly issues: readonly ManifestIssue[];
  /**
   * The file is not valid YAML (often a write caught half-way). Its previous objects are kept
   * until it parses again, so this result carries no objects.
   */
  readonly syntaxError: boolean;
}

const API_VERSIONS: Readonly<Record<ManifestKind, string>> = {
  Service: 'v1',
  Pod: 'v1',
  Node: 'v1',
  EndpointSlice: 'discovery.k8s.io/v1',
  NetworkPolicy: 'networking.k8s.io/v1',
  Namespace: 'v1',
};

/** The kinds the API server keeps outside namespaces: their identity and key are the bare name. */
export function clusterScoped(kind: string): boolean {
  return kind === 'Node' || kind === 'Namespace';
}

// RFC 1123 subdomain, what the API server demands of most object names and of namespaces.
const NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function checkService(doc: JsonObject): void {
  const spec = objectAt(doc, 'spec', '');
  if (!spec) return;
  for (const k of ['type', 'clusterIP', 'externalTrafficPolicy', 'ipFamilyPolicy'] as const)
    stringAt(spec, k, 'spec');
  stringListAt(spec, 'clusterIPs', 'spec');
  stringListAt(spec, 'ipFamilies', 'spec');
  stringMapAt(spec, 'selector', 'spec');
  integerAt(spec, 'healthCheckNodePort', 'spec', 0, 65535);
  objectListAt(spec, 'ports', 'spec').forEach((p, i) => {
    const at = `spec.ports[${i}]`;
    integerAt(p, 'port', at, 0, 65535);
    integerAt(p, 'nodePort', at, 0, 65535);
    stringAt(p, 'name', at);
    stringAt(p, 'protocol', at);
    const tp = p['targetPort'];
    if (tp !== undefined && tp !== null && typeof tp !== 'string' && typeof tp !== 'number')
      throw new ShapeError(`${at}.targetPort`, 'must be a number or a port name');
  });
}

function checkPod(doc: JsonObject): void {
  const spec = objectAt(doc, 'spec', '');
  if (spec) {
    stringAt(spec, 'nodeName', 'spec');
    objectListAt(spec, 'containers', 'spec').forEach((c, i) => {
      objectListAt(c, 'ports', `spec.containers[${i}]`).forEach((p, j) => {
        const at = `spec.containers[${i}].ports[${j}]`;
        integerAt(p, 'containerPort', at, 1, 65535);
        stringAt(p, 'name', at);
        stringAt(p, 'protocol', at);
      });
    });
  }
  const status = objectAt(doc, 'status', '');
  if (status) {
    ipAt(status, 'podIP', 'status');
    stringAt(status, 'phase', 'status');
    objectListAt(status, 'podIPs', 'status').forEach((p, i) => ipAt(p, 'ip', `status.podIPs[${i}]`));
    objectListAt(status, 'conditions', 'status').forEach((c, i) => {
      stringAt(c, 'type', `status.conditions[${i}]`);
      stringAt(c, 'status', `status.conditions[${i}]`);
    });
  }
}

function checkEndpointSlice(doc: JsonObject): void {
  const type = stringAt(doc, 'addressType', '');
  if (type === undefined) throw new ShapeError('addressType', 'required');
  if (type !== 'IPv4' && type !== 'IPv6' && type !== 'FQDN')
    throw new ShapeError('addressType', `must be IPv4, IPv6 or FQDN, got ${JSON.stringify(type)}`);
  objectListAt(doc, 'endpoints', '').forEach((e, i) => {
    if (e['addresses'] === undefined) throw new ShapeError(`endpoints[${i}].addresses`, 'required');
    stringListAt(e, 'addresses', `endpoints[${i}]`);
  });
  objectListAt(doc, 'ports', '').forEach((p, i) => integerAt(p, 'port', `ports[${i}]`, 0, 65535));
}

/** The object with the defaults `kubectl apply` fills in (namespace, empty spec). */
function normalise(kind: ManifestKind, doc: JsonObject, namespace: string | undefined): UsedObject {
  const metadata = { ...(doc['metadata'] as JsonObject) };
  if (clusterScoped(kind)) delete metadata['namespace'];
  else metadata['namespace'] = namespace ?? DEFAULT_NAMESPACE;
  const base = { ...doc, metadata };
  // The casts are where checked JSON becomes the typed contract; the checks above cover every
  // field that Ferry's standalone code reads, the model validates the rest.
  switch (kind) {
    case 'Service':
      return { kind, object: { ...base, spec: doc['spec'] ?? {} } as unknown as Service };
    case 'Pod': {
      const spec = isObject(doc['spec']) ? doc['spec'] : {};
      return {
        kind,
        object: { ...base, spec: { ...spec, containers: spec['containers'] ?? [] } } as unknown as Pod,
      };
    }
    case 'EndpointSlice':
      return { kind, object: base as unknown as EndpointSlice };
    case 'Node':
      return { kind, object: base as unknown as Node };
    case 'NetworkPolicy':
      return { kind, object: base as unknown as NetworkPolicy };
    case 'Namespace':
      return { kind, object: base as unknown as Namespace };
  }
}

function isUsedKind(kind: string): kind is ManifestKind {
  return Object.hasOwn(API_VERSIONS, kind);
}

export function identityOf(kind: string, namespace: string | undefined, name: string): string {
  return namespace === undefined ? `${kind} ${name}` : `${kind} ${namespace}/${name}`;
}

interface DocResult {
  readonly objects: ParsedObject[];
  readonly kept: KeptObject[];
  readonly issues: ManifestIssue[];
}

function readDocument(file: string, document: number, doc: unknown, path: string, out: DocResult): void {
  const issue = (field: string, message: string, object?: string): void => {
    out.issues.push({ file, document, ...(object ? { object } : {}), field: path + field, message });
  };
  if (!isObject(doc)) return issue('', 'a manifest document must be an object');
  const apiVersion = doc['apiVersion'];
  const kind = doc['kind'];
  if (typeof kind !== 'string' || kind === '') return issue('kind', 'required');
  if (typeof apiVersion !== 'string' || apiVersion === '') return issue('apiVersion', 'required');
  if (kind === 'List' || (kind.endsWith('List') && Array.isArray(doc['items']))) {
    const items = doc['items'];
    if (!Array.isArray(items)) return issue('items', 'must be a list');
    items.forEach((item: unknown, i) => readDocument(file, document, item, `${path}items[${i}].`, out));
    return;
  }
  const metadata = doc['metadata'];
  if (!isObject(metadata)) return issue('metadata', 'required');
  const name = metadata['name'];
  if (typeof name !== 'string' || name === '') return issue('metadata.name', 'required');
  if (!NAME_RE.test(name)) return issue('metadata.name', `${JSON.stringify(name)} is not a valid name`);
  const ns = metadata['namespace'];
  if (ns !== undefined && ns !== null && (typeof ns !== 'string' || !NAME_RE.test(ns)))
    return issue('metadata.namespace', `${JSON.stringify(ns)} is not a valid namespace`);
  const namespace = typeof ns === 'string' ? ns : undefined;
  if (!isUsedKind(kind)) {
    // Cluster-scoped or not, we cannot know for an arbitrary kind; the key only has to be stable.
    out.kept.push({ file, document, kind, identity: identityOf(kind, namespace ?? DEFAULT_NAMESPACE, name) });
    return;
  }
  const identity = identityOf(kind, clusterScoped(kind) ? undefined : (namespace ?? DEFAULT_NAMESPACE), name);
  if (apiVersion !== API_VERSIONS[kind])
    return issue(
      'apiVersion',
      `${kind} must be ${API_VERSIONS[kind]}, got ${JSON.stringify(apiVersion)}`,
      identity,
    );
  try {
    stringMapAt(metadata, 'labels', 'metadata');
    stringMapAt(metadata, 'annotations', 'metadata');
    stringAt(metadata, 'deletionTimestamp', 'metadata');
    if (kind === 'Service') checkService(doc);
    else if (kind === 'Pod') checkPod(doc);
    else if (kind === 'EndpointSlice') checkEndpointSlice(doc);
    else if (kind === 'NetworkPolicy') checkNetworkPolicy(doc);
  } catch (err) {
    if (err instanceof ShapeError) return issue(err.field, err.message, identity);
    throw err;
  }
  out.objects.push({ file, document, identity, entry: normalise(kind, doc, namespace) });
}

/** Parses one file's text. `file` is the path shown in issues (relative to the directory). */
export function parseManifestFile(file: string, text: string): FileParse {
  const out: DocResult = { objects: [], kept: [], issues: [] };
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [];
  let syntaxError = false;
  list.forEach((doc, i) => {
    const document = i + 1;
    if (doc.errors.length > 0) {
      syntaxError = true;
      const e = doc.errors[0]!;
      const line = e.linePos?.[0];
      const where = line ? `line ${line.line} column ${line.col}: ` : '';
      out.issues.push({ file, document, message: `YAML: ${where}${e.message.split('\n')[0]}` });
      return;
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return; // an empty document (`---` at the end)
    readDocument(file, document, value, '', out);
  });
  if (syntaxError) return { objects: [], kept: [], issues: out.issues, syntaxError };
  return { ...out, syntaxError };
}
