// A real, throwaway Kubernetes control plane for tests: etcd + kube-apiserver +
// kube-controller-manager, all on loopback, with fresh certificates, ports and data dir per start,
// so parallel or crashed runs never collide. Binaries come from hack/k8s/build.sh's cache.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { FerryError } from '../../src/common/errors.ts';
import { run, type RunResult } from '../../src/common/run.ts';

export const K8S_VERSION = 'v1.37.2';
const SERVICE_CIDRS = '10.96.0.0/16,fd00:10:96::/108';
const LOOPBACK = '127.0.0.1';

/** Where hack/k8s/build.sh puts the binaries (FERRY_K8S_BIN overrides). */
export function k8sBinDir(): string {
  // The same cache hack/k8s/build.sh fills (FERRY_K8S_CACHE), or an explicit directory.
  return (
    process.env['FERRY_K8S_BIN'] ??
    `${process.env['FERRY_K8S_CACHE'] ?? '/var/cache/ferry/k8s'}/${K8S_VERSION}/bin`
  );
}

const BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubectl'] as const;

/** Whether every binary the control plane needs is built; tests skip with this reason when not. */
export function missingBinaries(binDir: string = k8sBinDir()): readonly string[] {
  return BINARIES.filter((b) => !existsSync(join(binDir, b)));
}

export interface ControlPlaneOptions {
  readonly binDir?: string;
  /** kube-controller-manager controllers; defaults to the EndpointSlice and service-account ones. */
  readonly controllers?: readonly string[];
  /** How long to wait for /readyz. */
  readonly readyTimeoutMs?: number;
}

export interface KubectlOptions {
  readonly input?: string;
  readonly allowFailure?: boolean;
}

export interface ControlPlane extends AsyncDisposable {
  /** https://127.0.0.1:PORT */
  readonly server: string;
  /** Path of an admin kubeconfig (token auth, group system:masters). */
  readonly kubeconfig: string;
  readonly adminToken: string;
  /** PEM of the cluster CA, for clients that verify the apiserver. */
  readonly caFile: string;
  readonly binDir: string;
  /** Temp dir holding certificates, etcd data and each component's log (`NAME.log`). */
  readonly dir: string;
  /** Process ids of etcd, kube-apiserver, kube-controller-manager (in start order). */
  readonly pids: readonly number[];
  readonly startupMs: number;
  kubectl(args: readonly string[], options?: KubectlOptions): Promise<RunResult>;
  /** A kubeconfig (a file in `dir`) that authenticates as a ServiceAccount, with a bound token. */
  serviceAccountKubeconfig(namespace: string, name: string): Promise<string>;
  /** Stops kube-apiserver alone (etcd and the controller manager keep running), as an outage would. */
  stopApiServer(): Promise<void>;
  /** Starts kube-apiserver again with the same flags and port; resolves once /readyz answers 200. */
  startApiServer(): Promise<void>;
  /** Stops every process (TERM, then KILL) and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

interface Component {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, LOOPBACK, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Distinct free ports (asked for together so the kernel cannot hand the same one out twice). */
async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  await run('openssl', args, { env: { ...process.env, RANDFILE: join(dir, '.rnd') } });
}

/** CA, apiserver serving cert (SANs: loopback + the in-cluster names) and service-account keys. */
async function makeCertificates(dir: string): Promise<void> {
  const p = (f: string): string => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(dir, [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=ferry-test-ca',
  ]);
  await openssl(dir, [
    'req',
    ...ec,
    '-keyout',
    p('apiserver.key'),
    '-out',
    p('apiserver.csr'),
    '-subj',
    '/CN=kube-apiserver',
  ]);
  await writeFile(
    p('apiserver.ext'),
    'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,' +
      'DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n',
  );
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    p('apiserver.csr'),
    '-CA',
    p('ca.crt'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    p('apiserver.ext'),
    '-out',
    p('apiserver.crt'),
  ]);
  await openssl(dir, [
    'genpkey',
    '-algorithm',
    'RSA',
    '-pkeyopt',
    'rsa_keygen_bits:2048',
    '-out',
    p('sa.key'),
  ]);
  await openssl(dir, ['pkey', '-in', p('sa.key'), '-pubout', '-out', p('sa.pub')]);
}

function kubeconfigJson(server: string, caFile: string, user: string, token: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'ferry', cluster: { server, 'certificate-authority': caFile } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'ferry', context: { cluster: 'ferry', user } }],
    'current-context': 'ferry',
  });
}

function startComponent(dir: string, binDir: string, name: string, args: readonly string[]): Component {
  // Appended to, so a restarted component's log keeps what the first run said.
  const log = createWriteStream(join(dir, `${name}.log`), { flags: 'a' });
  const child = spawn(join(binDir, name), args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<void>((resolve) => {
    child.once('error', () => resolve());
    child.once('close', () => {
      log.end();
      resolve();
    });
  });
  return { name, child, exited };
}

async function logTail(dir: string, name: string): Promise<string> {
  const text = await readFile(join(dir, `${name}.log`), 'utf8').catch(() => '');
  return text.split('\n').slice(-25).join('\n');
}

function readyz(port: number, token: string, ca: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: LOOPBACK,
        port,
        path: '/readyz',
        ca,
        headers: { authorization: `Bearer ${token}` },
        timeout: 2000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

async function stopComponent(c: Component): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null || c.child.pid === undefined) return;
  c.child.kill('SIGTERM');
  const done = await Promise.race([c.exited.then(() => true), sleep(10_000).then(() => false)]);
  if (!done) {
    c.child.kill('SIGKILL');
    await c.exited;
  }
}

/** Starts etcd, kube-apiserver and kube-controller-manager; resolves once /readyz answers 200. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binDir = options.binDir ?? k8sBinDir();
  const missing = missingBinaries(binDir);
  if (missing.length) {
    throw new FerryError(
      'FERRY_E_LAB',
      `k8s control plane: ${binDir}: missing ${missing.join(', ')} (run hack/k8s/build.sh)`,
    );
  }
  const t0 = performance.now();
  const dir = await mkdtemp(join(tmpdir(), 'ferry-k8s-'));
  const components: Component[] = [];
  let stopped: Promise<void> | undefined;
  // If the test process exits without stop() (uncaught error, process.exit), take the children along.
  const killOnExit = (): void => {
    for (const c of components) if (c.child.exitCode === null) c.child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      process.off('exit', killOnExit);
      for (const c of [...components].reverse()) await stopComponent(c);
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    await makeCertificates(dir);
    const [etcdClient, etcdPeer, apiPort, kcmPort] = (await freePorts(4)) as [number, number, number, number];
    const adminToken = randomBytes(24).toString('hex');
    const kcmToken = randomBytes(24).toString('hex');
    await writeFile(
      join(dir, 'tokens.csv'),
      `${adminToken},ferry-admin,ferry-admin,"system:masters"\n` +
        `${kcmToken},system:kube-controller-manager,system:kube-controller-manager\n`,
      { mode: 0o600 },
    );
    const server = `https://${LOOPBACK}:${apiPort}`;
    const caFile = join(dir, 'ca.crt');
    const kubeconfig = join(dir, 'admin.kubeconfig');
    await writeFile(kubeconfig, kubeconfigJson(server, caFile, 'ferry-admin', adminToken), { mode: 0o600 });
    await writeFile(join(dir, 'kcm.kubeconfig'), kubeconfigJson(server, caFile, 'kcm', kcmToken), {
      mode: 0o600,
    });

    const etcdUrl = `http://${LOOPBACK}:${etcdClient}`;
    const peerUrl = `http://${LOOPBACK}:${etcdPeer}`;
    components.push(
      startComponent(dir, binDir, 'etcd', [
        '--name=ferry',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=ferry=${peerUrl}`,
        `--initial-cluster-token=ferry-${adminToken.slice(0, 8)}`,
        '--log-level=warn',
        // Tests throw the data away: skip fsync cost.
        '--unsafe-no-fsync',
      ]),
    );
    const apiServerArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${LOOPBACK}`,
      `--advertise-address=${LOOPBACK}`,
      `--secure-port=${apiPort}`,
      // The `kubernetes` Service's endpoint would be a loopback address, which EndpointSlice
      // validation rejects; nothing in the tests needs that Service to have endpoints.
      '--endpoint-reconciler-type=none',
      `--cert-dir=${dir}`,
      `--tls-cert-file=${join(dir, 'apiserver.crt')}`,
      `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
      `--client-ca-file=${caFile}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--authorization-mode=Node,RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      `--service-cluster-ip-range=${SERVICE_CIDRS}`,
      '--anonymous-auth=false',
      '--profiling=false',
    ];
    components.push(startComponent(dir, binDir, 'kube-apiserver', apiServerArgs));
    const ca = await readFile(caFile);
    await waitReady(dir, components, apiPort, adminToken, ca, options.readyTimeoutMs ?? 90_000);

    const controllers = options.controllers ?? [
      'endpointslice',
      'endpointslicemirroring',
      'serviceaccount',
      'serviceaccount-token',
    ];
    components.push(
      startComponent(dir, binDir, 'kube-controller-manager', [
        `--kubeconfig=${join(dir, 'kcm.kubeconfig')}`,
        `--bind-address=${LOOPBACK}`,
        `--secure-port=${kcmPort}`,
        `--cert-dir=${dir}`,
        `--controllers=${controllers.join(',')}`,
        // Each controller runs as its own service account, as in a real cluster, so RBAC is exercised.
        '--use-service-account-credentials=true',
        `--service-account-private-key-file=${join(dir, 'sa.key')}`,
        `--root-ca-file=${caFile}`,
        `--service-cluster-ip-range=${SERVICE_CIDRS}`,
        '--leader-elect=false',
        '--profiling=false',
      ]),
    );
    await sleep(200);
    await assertRunning(dir, components);

    const startupMs = performance.now() - t0;
    const pids = components.map((c) => c.child.pid ?? -1);
    return {
      server,
      kubeconfig,
      adminToken,
      caFile,
      binDir,
      dir,
      pids,
      startupMs,
      kubectl: (args, o = {}) =>
        run(join(binDir, 'kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], {
          ...(o.input === undefined ? {} : { input: o.input }),
          allowFailure: o.allowFailure ?? false,
          timeoutMs: 60_000,
        }),
      serviceAccountKubeconfig: async (namespace, name) => {
        const r = await run(
          join(binDir, 'kubectl'),
          [`--kubeconfig=${kubeconfig}`, 'create', 'token', name, '-n', namespace, '--duration=6h'],
          { timeoutMs: 60_000 },
        );
        const file = join(dir, `sa-${namespace}-${name}.kubeconfig`);
        await writeFile(
          file,
          kubeconfigJson(server, caFile, `system:serviceaccount:${namespace}:${name}`, r.stdout.trim()),
          { mode: 0o600 },
        );
        return file;
      },
      stopApiServer: async () => {
        const c = components.find((x) => x.name === 'kube-apiserver');
        if (c) await stopComponent(c);
      },
      startApiServer: async () => {
        const i = components.findIndex((x) => x.name === 'kube-apiserver');
        const c = components[i];
        if (c && c.child.exitCode === null && c.child.signalCode === null) return;
        components[i] = startComponent(dir, binDir, 'kube-apiserver', apiServerArgs);
        await waitReady(
          dir,
          components.slice(0, i + 1),
          apiPort,
          adminToken,
          ca,
          options.readyTimeoutMs ?? 90_000,
        );
      },
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function assertRunning(dir: string, components: readonly Component[]): Promise<void> {
  for (const c of components) {
    if (c.child.exitCode !== null || c.child.signalCode !== null) {
      const why = c.child.signalCode ?? `exit ${c.child.exitCode}`;
      throw new FerryError(
        'FERRY_E_LAB',
        `k8s control plane: ${c.name}: ${why}:\n${await logTail(dir, c.name)}`,
      );
    }
  }
}

async function waitReady(
  dir: string,
  components: readonly Component[],
  port: number,
  token: string,
  ca: Buffer,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let status = 0;
  while (Date.now() < deadline) {
    await assertRunning(dir, components);
    status = await readyz(port, token, ca);
    if (status === 200) return;
    await sleep(250);
  }
  throw new FerryError(
    'FERRY_E_LAB',
    `k8s control plane: kube-apiserver: /readyz still ${status} after ${timeoutMs} ms:\n${await logTail(dir, 'kube-apiserver')}`,
  );
}
