// cyclonus as Ferry's NetworkPolicy oracle (issue #14): builds the exporter (hack/cyclonus/build.sh,
// cached outside the repo), runs it on a probe model and turns its JSON into checked TypeScript
// values. The cases and truth tables are cyclonus's own (its generator and matcher, run offline);
// this file only carries them, so a lab test can compare what Ferry does with what cyclonus expects.
//
// The parse checks every field the consumer reads and fails naming the JSON path at fault. A
// policy is checked as far as its envelope (apiVersion, kind, name, namespace, spec an object):
// whether its spec is a valid NetworkPolicy is the API server's question, which
// src/model/policy/validate.ts answers, and the unit test asks it of every policy.
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { NetworkPolicy, PolicyProtocol } from '../../src/model/policy/api.ts';

const BUILD_SCRIPT = fileURLToPath(new URL('../../hack/cyclonus/build.sh', import.meta.url));
/** The upstream probe model: namespaces x, y, z; pods a, b, c in each; TCP and UDP on 80 and 81. */
export const UPSTREAM_PROBE_MODEL = fileURLToPath(
  new URL('../../hack/cyclonus/upstream-model.json', import.meta.url),
);

type Labels = Readonly<Record<string, string>>;

export interface ModelContainer {
  readonly name?: string;
  readonly port: number;
  readonly protocol: PolicyProtocol;
  readonly portName: string;
}

export interface ModelPod {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly ip: string;
  readonly containers?: readonly ModelContainer[];
}

/** What the lab runs; see hack/cyclonus/README.md. */
export interface ProbeModel {
  readonly namespaces: Readonly<Record<string, Labels>>;
  readonly pods: readonly ModelPod[];
  readonly ports?: readonly number[];
  readonly protocols?: readonly PolicyProtocol[];
  readonly createdPodIPs?: Readonly<Record<string, string>>;
}

export type Verdict = 'allowed' | 'denied' | 'invalid-named-port' | 'invalid-port-protocol';
const VERDICTS: readonly Verdict[] = ['allowed', 'denied', 'invalid-named-port', 'invalid-port-protocol'];
const PROTOCOLS: readonly PolicyProtocol[] = ['TCP', 'UDP', 'SCTP'];

/** One probe: `from` and `to` are "namespace/pod"; ingress/egress only for probes that ran. */
export interface TruthCell {
  readonly from: string;
  readonly to: string;
  readonly protocol: PolicyProtocol;
  readonly port: number;
  readonly portName: string;
  readonly verdict: Verdict;
  readonly ingress?: 'allowed' | 'denied';
  readonly egress?: 'allowed' | 'denied';
}

export type CaseAction =
  | { readonly kind: 'create-policy' | 'update-policy'; readonly policy: NetworkPolicy }
  | { readonly kind: 'delete-policy'; readonly namespace: string; readonly name: string }
  | {
      readonly kind: 'create-namespace' | 'set-namespace-labels';
      readonly namespace: string;
      readonly labels: Labels;
    }
  | { readonly kind: 'delete-namespace'; readonly namespace: string }
  | {
      readonly kind: 'create-pod';
      readonly namespace: string;
      readonly pod: string;
      readonly labels: Labels;
      readonly ip: string;
      readonly containers: readonly ModelContainer[];
    }
  | {
      readonly kind: 'set-pod-labels';
      readonly namespace: string;
      readonly pod: string;
      readonly labels: Labels;
    }
  | { readonly kind: 'delete-pod'; readonly namespace: string; readonly pod: string };

/** Every serving port of every pod, or one port (a number, or a container port's name). */
export type StepProbe =
  | { readonly mode: string; readonly allAvailable: true }
  | { readonly mode: string; readonly protocol: PolicyProtocol; readonly port: number | string };

export interface CaseStep {
  readonly probe: StepProbe;
  readonly actions: readonly CaseAction[];
  /** The cluster after this step's actions: what the truth table was computed for. */
  readonly namespaces: Readonly<Record<string, Labels>>;
  readonly pods: readonly {
    readonly namespace: string;
    readonly name: string;
    readonly labels: Labels;
    readonly ip: string;
  }[];
  readonly policies: readonly string[];
  readonly truthTable: readonly TruthCell[];
}

export interface OracleCase {
  /** Position in cyclonus's whole generated corpus: stable whatever tags select the case. */
  readonly index: number;
  readonly description: string;
  readonly tags: readonly string[];
  readonly steps: readonly CaseStep[];
}

export interface OracleExport {
  readonly cyclonus: string;
  readonly countsByTag: Readonly<Record<string, number>>;
  readonly cases: readonly OracleCase[];
}

export class OracleFormatError extends Error {
  /** The JSON path at fault, e.g. `$.cases[3].steps[0].truthTable[17].verdict`. */
  readonly path: string;
  constructor(path: string, problem: string) {
    super(`cyclonus export: ${path}: ${problem}`);
    this.name = 'OracleFormatError';
    this.path = path;
  }
}

// --- readers: each returns the typed value or throws naming the path --------------------------

type Reader<T> = (v: unknown, path: string) => T;

const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v).slice(0, 80));

function record(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new OracleFormatError(path, `expected an object, got ${show(v)}`);
  return v as Record<string, unknown>;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') throw new OracleFormatError(path, `expected a string, got ${show(v)}`);
  return v;
}

function int(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new OracleFormatError(path, `expected an integer, got ${show(v)}`);
  return v;
}

function oneOf<T extends string>(values: readonly T[]): Reader<T> {
  return (v, path) => {
    if (!values.includes(v as T))
      throw new OracleFormatError(path, `expected one of ${values.join(', ')}, got ${show(v)}`);
    return v as T;
  };
}

function list<T>(item: Reader<T>): Reader<T[]> {
  return (v, path) => {
    if (!Array.isArray(v)) throw new OracleFormatError(path, `expected an array, got ${show(v)}`);
    return v.map((x, i) => item(x, `${path}[${i}]`));
  };
}

function dict<T>(item: Reader<T>): Reader<Record<string, T>> {
  return (v, path) =>
    Object.fromEntries(Object.entries(record(v, path)).map(([k, x]) => [k, item(x, `${path}.${k}`)]));
}

const labels = dict(str);
const protocol = oneOf(PROTOCOLS);

function container(v: unknown, path: string): ModelContainer {
  const o = record(v, path);
  return {
    name: str(o.name, `${path}.name`),
    port: int(o.port, `${path}.port`),
    protocol: protocol(o.protocol, `${path}.protocol`),
    portName: str(o.portName, `${path}.portName`),
  };
}

function policy(v: unknown, path: string): NetworkPolicy {
  const o = record(v, path);
  oneOf(['networking.k8s.io/v1'])(o.apiVersion, `${path}.apiVersion`);
  oneOf(['NetworkPolicy'])(o.kind, `${path}.kind`);
  const meta = record(o.metadata, `${path}.metadata`);
  str(meta.name, `${path}.metadata.name`);
  str(meta.namespace, `${path}.metadata.namespace`);
  record(o.spec, `${path}.spec`);
  return o as unknown as NetworkPolicy;
}

function action(v: unknown, path: string): CaseAction {
  const o = record(v, path);
  const at = (f: string): string => `${path}.${f}`;
  const kind = oneOf([
    'create-policy',
    'update-policy',
    'delete-policy',
    'create-namespace',
    'set-namespace-labels',
    'delete-namespace',
    'create-pod',
    'set-pod-labels',
    'delete-pod',
  ] as const)(o.kind, at('kind'));
  switch (kind) {
    case 'create-policy':
    case 'update-policy':
      return { kind, policy: policy(o.policy, at('policy')) };
    case 'delete-policy':
      return { kind, namespace: str(o.namespace, at('namespace')), name: str(o.name, at('name')) };
    case 'create-namespace':
    case 'set-namespace-labels':
      return { kind, namespace: str(o.namespace, at('namespace')), labels: labels(o.labels, at('labels')) };
    case 'delete-namespace':
      return { kind, namespace: str(o.namespace, at('namespace')) };
    case 'create-pod':
      return {
        kind,
        namespace: str(o.namespace, at('namespace')),
        pod: str(o.pod, at('pod')),
        labels: labels(o.labels, at('labels')),
        ip: str(o.ip, at('ip')),
        containers: list(container)(o.containers, at('containers')),
      };
    case 'set-pod-labels':
      return {
        kind,
        namespace: str(o.namespace, at('namespace')),
        pod: str(o.pod, at('pod')),
        labels: labels(o.labels, at('labels')),
      };
    case 'delete-pod':
      return { kind, namespace: str(o.namespace, at('namespace')), pod: str(o.pod, at('pod')) };
  }
}

function stepProbe(v: unknown, path: string): StepProbe {
  const o = record(v, path);
  const mode = str(o.mode, `${path}.mode`);
  if (o.allAvailable === true) return { mode, allAvailable: true };
  const port = typeof o.port === 'string' ? o.port : int(o.port, `${path}.port`);
  return { mode, protocol: protocol(o.protocol, `${path}.protocol`), port };
}

const direction = oneOf(['allowed', 'denied'] as const);

function cell(v: unknown, path: string): TruthCell {
  const o = record(v, path);
  const base = {
    from: str(o.from, `${path}.from`),
    to: str(o.to, `${path}.to`),
    protocol: protocol(o.protocol, `${path}.protocol`),
    port: int(o.port, `${path}.port`),
    portName: str(o.portName, `${path}.portName`),
    verdict: oneOf(VERDICTS)(o.verdict, `${path}.verdict`),
  };
  if (base.verdict !== 'allowed' && base.verdict !== 'denied') return base;
  return {
    ...base,
    ingress: direction(o.ingress, `${path}.ingress`),
    egress: direction(o.egress, `${path}.egress`),
  };
}

function pod(v: unknown, path: string): CaseStep['pods'][number] {
  const o = record(v, path);
  const at = (f: string): string => `${path}.${f}`;
  return {
    namespace: str(o.namespace, at('namespace')),
    name: str(o.name, at('name')),
    labels: labels(o.labels, at('labels')),
    ip: str(o.ip, at('ip')),
  };
}

function step(v: unknown, path: string): CaseStep {
  const o = record(v, path);
  return {
    probe: stepProbe(o.probe, `${path}.probe`),
    actions: list(action)(o.actions, `${path}.actions`),
    namespaces: dict(labels)(o.namespaces, `${path}.namespaces`),
    pods: list(pod)(o.pods, `${path}.pods`),
    policies: list(str)(o.policies, `${path}.policies`),
    truthTable: list(cell)(o.truthTable, `${path}.truthTable`),
  };
}

function oracleCase(v: unknown, path: string): OracleCase {
  const o = record(v, path);
  return {
    index: int(o.index, `${path}.index`),
    description: str(o.description, `${path}.description`),
    tags: list(str)(o.tags, `${path}.tags`),
    steps: list(step)(o.steps, `${path}.steps`),
  };
}

/** Checks the exporter's output against the types above; throws OracleFormatError naming the path. */
export function parseOracleExport(v: unknown): OracleExport {
  const o = record(v, '$');
  return {
    cyclonus: str(o.cyclonus, '$.cyclonus'),
    countsByTag: dict(int)(o.countsByTag, '$.countsByTag'),
    cases: list(oracleCase)(o.cases, '$.cases'),
  };
}

// --- building and running ---------------------------------------------------------------------

let binary: Promise<string> | undefined;

function build(): Promise<string> {
  return new Promise((resolve, reject) => {
    // Progress goes to our stderr so that a slow cold build is visibly a build, not a hang.
    const child = spawn('bash', [BUILD_SCRIPT], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(out.trim())
        : reject(new Error(`${BUILD_SCRIPT} exited with ${code} (its error is above)`)),
    );
  });
}

/** The exporter's path, built on first use (minutes cold, then cached by build.sh). */
export function cyclonusBinary(): Promise<string> {
  binary ??= build();
  return binary;
}

export function readProbeModel(file: string = UPSTREAM_PROBE_MODEL): ProbeModel {
  return JSON.parse(readFileSync(file, 'utf8')) as ProbeModel;
}

export interface ExportOptions {
  /** Keep cases with any of these tags (default: every case). */
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
  /** At most this many cases, after tag selection. */
  readonly limit?: number;
}

function exportArgs(o: ExportOptions): string[] {
  const args = ['-model', '-'];
  if (o.include?.length) args.push('-include', o.include.join(','));
  if (o.exclude?.length) args.push('-exclude', o.exclude.join(','));
  if (o.limit !== undefined) args.push('-limit', String(o.limit));
  return args;
}

/** Runs the exporter on a probe model: cyclonus's cases and expected truth tables, checked. */
export async function exportCases(model: ProbeModel, options: ExportOptions = {}): Promise<OracleExport> {
  const bin = await cyclonusBinary();
  return new Promise((resolve, reject) => {
    // The whole corpus is about 12 MB of JSON.
    const child = execFile(
      bin,
      exportArgs(options),
      { maxBuffer: 256 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`${bin} failed: ${stderr.trim() || error.message}`));
        try {
          resolve(parseOracleExport(JSON.parse(stdout)));
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      },
    );
    child.stdin!.end(JSON.stringify(model));
  });
}
