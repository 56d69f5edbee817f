// North-south NodePort throughput from the lab's external client to a node's own backend pod:
// requests/s over persistent TCP connections and new connections/s, through
//   direct   — straight to node 1's pod (ceiling; the client routes to the pod CIDR via node 1),
//   iptables — a kube-proxy-shaped nat ruleset in node 1's namespace (plus filler services),
//   tc       — nodeport_tc.o on node 2's eth0,
//   xdp      — nodeport_xdp.o on node 3 (native, falling back to generic) + tc egress,
// with system CPU per request from /proc/stat. Ratios are against iptables, measured in the same
// run. Everything happens inside lab namespaces. The load generator is this file run with --load
// inside the client namespace.
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLab, ECHO_PORTS, type Lab } from '../src/lab/index.ts';
import { openPinnedMap } from '../test/kernel/nodeport/support/loader.ts';
import { writeService } from '../test/kernel/nodeport/support/services.ts';

const SECONDS = Number(process.env.SECONDS_PER_RUN ?? 4);
// wrk (Debian's, C) loads harder than the Node generator can; installed by set-up.
const HAVE_WRK = spawnSync('wrk', ['-v']).error === undefined;
const CONNS = Number(process.env.CONNS ?? 16);

// ---- load generator (child) ----
async function load(
  host: string,
  port: number,
  mode: 'rr' | 'cc',
  seconds: number,
  conns: number,
): Promise<void> {
  const end = Date.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  const payload = Buffer.alloc(64, 'x');
  const rr = async (): Promise<void> => {
    const s = connect({ host, port });
    await new Promise<void>((res, rej) => s.once('connect', () => res()).once('error', rej));
    let buffered = 0;
    let greeted = false;
    let wake: (() => void) | undefined;
    s.on('data', (d: Buffer) => {
      if (!greeted) {
        const nl = d.indexOf(10);
        if (nl < 0) return;
        greeted = true;
        d = d.subarray(nl + 1);
      }
      buffered += d.length;
      if (buffered >= 64) {
        buffered -= 64;
        wake?.();
      }
    });
    while (Date.now() < end) {
      await new Promise<void>((res) => {
        wake = res;
        s.write(payload);
      });
      done++;
    }
    s.destroy();
  };
  const cc = async (): Promise<void> => {
    while (Date.now() < end) {
      await new Promise<void>((res) => {
        const s = connect({ host, port });
        const t = setTimeout(() => (errors++, s.destroy(), res()), 2000);
        // RST, not FIN: a FIN would leave the client's port in TIME_WAIT and exhaust the range.
        s.once('data', () => (clearTimeout(t), done++, s.resetAndDestroy(), res()));
        s.once('error', () => (clearTimeout(t), errors++, res()));
      });
    }
  };
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conns }, () => (mode === 'rr' ? rr() : cc()).catch(() => void errors++)),
  );
  const secs = (performance.now() - t0) / 1000;
  process.stdout.write(`${JSON.stringify({ done, errors, secs })}\n`);
}

if (process.argv[2] === '--load') {
  const [, , , host = '', port = '0', mode = 'rr', secs = '4', conns = '16'] = process.argv;
  await load(host, Number(port), mode as 'rr' | 'cc', Number(secs), Number(conns));
  process.exit(0);
}

// ---- orchestration ----
function cpuBusy(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return f.reduce((a, b) => a + b, 0) - idle; // jiffies (USER_HZ)
}

interface Figure {
  readonly rps: number;
  readonly cps: number;
  readonly cpuUsPerReq: number;
  readonly errors: number;
}

async function measure(lab: Lab, host: string, port: number): Promise<Figure> {
  const self = fileURLToPath(import.meta.url);
  const run = async (mode: 'rr' | 'cc'): Promise<{ rate: number; cpuUs: number; errors: number }> => {
    const c0 = cpuBusy();
    const r = await lab.exec(
      'client',
      [
        process.execPath,
        '--disable-warning=ExperimentalWarning',
        self,
        '--load',
        host,
        String(port),
        mode,
        String(SECONDS),
        String(CONNS),
      ],
      { timeoutMs: (SECONDS + 30) * 1000 },
    );
    const c1 = cpuBusy();
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
      done: number;
      errors: number;
      secs: number;
    };
    const jiffyUs = 1e6 / 100;
    return {
      rate: out.done / out.secs,
      cpuUs: ((c1 - c0) * jiffyUs) / Math.max(1, out.done),
      errors: out.errors,
    };
  };
  const rr = await run('rr');
  const cc = await run('cc');
  return { rps: rr.rate, cps: cc.rate, cpuUsPerReq: rr.cpuUs, errors: rr.errors + cc.errors };
}

/** New connections/s from wrk (C) against the echo server's HTTP port, which closes every
 * connection after its answer: one request, one connection. Undefined without wrk. */
async function measureWrk(
  lab: Lab,
  host: string,
  port: number,
): Promise<{ cps: number; errors: number } | undefined> {
  if (!HAVE_WRK) return undefined;
  const r = await lab.exec(
    'client',
    ['wrk', '-t1', `-c${CONNS}`, `-d${SECONDS}s`, `http://${host}:${port}/`],
    { timeoutMs: (SECONDS + 30) * 1000 },
  );
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  if (r.code !== 0 || !rate) throw new Error(`wrk ${host}:${port}: ${r.stdout}${r.stderr}`);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.stdout);
  const errors = socket ? Number(socket[1]) + Number(socket[3]) + Number(socket[4]) : 0;
  return { cps: Number(rate[1]), errors };
}

function kubeProxyRules(
  ports: ReadonlyArray<readonly [nodePort: number, backendPort: number]>,
  backend: string,
  filler: number,
): string {
  const lines = [
    '*nat',
    ':KUBE-SERVICES - [0:0]',
    ':KUBE-NODEPORTS - [0:0]',
    ':KUBE-POSTROUTING - [0:0]',
    ':KUBE-MARK-MASQ - [0:0]',
  ];
  const rules: string[] = [];
  for (let i = 0; i < filler; i++) {
    const svc = `KUBE-SVC-F${String(i).padStart(11, '0')}`;
    const sep = `KUBE-SEP-F${String(i).padStart(11, '0')}`;
    lines.push(`:${svc} - [0:0]`, `:${sep} - [0:0]`);
    rules.push(
      `-A KUBE-SERVICES -d 10.96.${(i >> 8) & 255}.${i & 255}/32 -p tcp -m tcp --dport 80 -j ${svc}`,
      `-A ${svc} -m statistic --mode random --probability 1.0 -j ${sep}`,
      `-A ${sep} -p tcp -m tcp -j DNAT --to-destination 10.244.9.${(i % 250) + 1}:80`,
    );
  }
  rules.push(
    '-A PREROUTING -j KUBE-SERVICES',
    '-A OUTPUT -j KUBE-SERVICES',
    '-A POSTROUTING -j KUBE-POSTROUTING',
    '-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
  );
  for (const [nodePort, backendPort] of ports) {
    const [ext, svc, sep] = ['EXT', 'SVC', 'SEP'].map((k) => `KUBE-${k}-BENCH${nodePort}`) as [
      string,
      string,
      string,
    ];
    lines.push(`:${ext} - [0:0]`, `:${svc} - [0:0]`, `:${sep} - [0:0]`);
    rules.push(
      `-A KUBE-NODEPORTS -p tcp -m tcp --dport ${nodePort} -j ${ext}`,
      `-A ${ext} -j KUBE-MARK-MASQ`,
      `-A ${ext} -j ${svc}`,
      `-A ${svc} -m statistic --mode random --probability 1.0 -j ${sep}`,
      `-A ${sep} -p tcp -m tcp -j DNAT --to-destination ${backend}:${backendPort}`,
    );
  }
  rules.push(
    '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
    '-A KUBE-POSTROUTING -j MASQUERADE',
  );
  // kube-proxy puts the NodePort jump last in KUBE-SERVICES
  const nodeportJump = rules.splice(
    rules.indexOf('-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS'),
    1,
  );
  return [...lines, ...rules, ...nodeportJump, 'COMMIT', ''].join('\n');
}

// Three nodes, one datapath each, every NodePort to the node's own pod, so the paths can be
// measured interleaved round after round (this machine is shared; medians of ROUNDS rounds).
const ROUNDS = Number(process.env.ROUNDS ?? 3);
// kube-proxy's iptables mode matches KUBE-SERVICES rule by rule for every new connection, so its
// cost grows with the number of Services; node 4 carries the same ruleset at cluster scale.
const LARGE = Number(process.env.LARGE_SERVICES ?? 10000);
const lab = await createLab({ nodes: 4, podsPerNode: 1 });
try {
  const [nIpt, nTc, nXdp, nIptLarge] = [lab.node(1), lab.node(2), lab.node(3), lab.node(4)];
  for (const pod of lab.pods) await lab.startEchoServer(pod, { udp: [], http: [ECHO_PORTS.http] });
  await lab.addClientRoute(nIpt.podCidrV4, 1);
  const podOf = (n: typeof nIpt): string => lab.podsOn(n)[0]!.ipv4;

  const nodePorts = [
    [30080, ECHO_PORTS.tcp],
    [30081, ECHO_PORTS.http],
  ] as const;
  const rules = kubeProxyRules(nodePorts, podOf(nIpt), Number(process.env.FILLER_SERVICES ?? 500));
  const ipt = await lab.exec(nIpt, ['iptables-restore', '--noflush'], { input: rules });
  if (ipt.code !== 0) throw new Error(`iptables-restore: ${ipt.stderr}`);
  const large = await lab.exec(nIptLarge, ['iptables-restore', '--noflush'], {
    input: kubeProxyRules(nodePorts, podOf(nIptLarge), LARGE),
  });
  if (large.code !== 0) throw new Error(`iptables-restore (${LARGE} services): ${large.stderr}`);

  const attach = async (node: typeof nIpt, xdp: string): Promise<void> => {
    const r = await lab.exec(node, [
      process.execPath,
      '--disable-warning=ExperimentalWarning',
      'test/kernel/nodeport/support/attach.ts',
      '--pin',
      node.pinDir,
      '--node-addrs',
      `${node.externalIpv4},${node.ipv4}`,
      '--snat4',
      node.ipv4,
      '--xdp',
      xdp,
    ]);
    if (r.code !== 0) throw new Error(`attach ${xdp}: ${r.stderr}`);
    using services = openPinnedMap(`${node.pinDir}/ferry_services_v1`, 24, 20);
    using backends = openPinnedMap(`${node.pinDir}/ferry_backends_v1`, 4, 24);
    for (const [i, [nodePort, backendPort]] of nodePorts.entries())
      writeService(services, backends, {
        id: i + 1,
        address: '0.0.0.0',
        port: nodePort,
        backends: [{ id: i + 1, address: podOf(node), port: backendPort, local: true }],
      });
  };
  await attach(nTc, 'off');
  let xdpMode = 'native';
  try {
    await attach(nXdp, 'native');
  } catch {
    xdpMode = 'generic';
    await attach(nXdp, 'generic');
  }

  const paths: Array<[string, string, number, number]> = [
    ['direct', podOf(nIpt), ECHO_PORTS.tcp, ECHO_PORTS.http],
    ['iptables', nIpt.externalIpv4, 30080, 30081],
    [`iptables ${LARGE / 1000}k`, nIptLarge.externalIpv4, 30080, 30081],
    [`xdp (${xdpMode})`, nXdp.externalIpv4, 30080, 30081],
    ['tc', nTc.externalIpv4, 30080, 30081],
  ];
  const samples = new Map<string, Figure[]>(paths.map(([n]) => [n, []]));
  const wrkSamples = new Map<string, { cps: number; errors: number }[]>(paths.map(([n]) => [n, []]));
  for (let round = 0; round < ROUNDS; round++)
    for (const [name, host, port, httpPort] of paths) {
      samples.get(name)!.push(await measure(lab, host, port));
      const w = await measureWrk(lab, host, httpPort);
      if (w) wrkSamples.get(name)!.push(w);
    }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const results = new Map<string, Figure>(
    [...samples].map(([n, fs]) => [
      n,
      {
        rps: median(fs.map((f) => f.rps)),
        cps: median(fs.map((f) => f.cps)),
        cpuUsPerReq: median(fs.map((f) => f.cpuUsPerReq)),
        errors: fs.reduce((a, f) => a + f.errors, 0),
      },
    ]),
  );

  const base = results.get('iptables')!;
  const ratio = (v: number, b: number): string => `${(v / b).toFixed(2)}x`;
  console.log(
    `nodeport bench: ${CONNS} connections, ${SECONDS}s per run, medians of ${ROUNDS} interleaved rounds, 64-byte echo requests; ratios vs iptables`,
  );
  console.log('path            req/s   ratio   conn/s  ratio  cpu µs/req  errors');
  for (const [name] of paths) {
    const f = results.get(name)!;
    console.log(
      `${name.padEnd(14)} ${f.rps.toFixed(0).padStart(7)} ${ratio(f.rps, base.rps).padStart(7)} ${f.cps
        .toFixed(0)
        .padStart(
          8,
        )} ${ratio(f.cps, base.cps).padStart(6)} ${f.cpuUsPerReq.toFixed(1).padStart(11)} ${String(f.errors).padStart(7)}`,
    );
  }
  if (HAVE_WRK) {
    const wrk = new Map(
      [...wrkSamples].map(([n, ws]) => [
        n,
        { cps: median(ws.map((w) => w.cps)), errors: ws.reduce((a, w) => a + w.errors, 0) },
      ]),
    );
    const wBase = wrk.get('iptables')!;
    console.log(
      `\nnew connections/s with wrk (C) against the echo server's HTTP port (one request per connection), ${CONNS} connections, medians of ${ROUNDS}`,
    );
    console.log('path             conn/s  ratio  errors');
    for (const [name] of paths) {
      const w = wrk.get(name)!;
      console.log(
        `${name.padEnd(14)} ${w.cps.toFixed(0).padStart(8)} ${ratio(w.cps, wBase.cps).padStart(6)} ${String(w.errors).padStart(7)}`,
      );
    }
    const wx = wrk.get(`xdp (${xdpMode})`)!;
    const wb = wrk.get(`iptables ${LARGE / 1000}k`)!;
    console.log(`wrk: XDP vs iptables ${LARGE / 1000}k new conn/s ${ratio(wx.cps, wb.cps)} (goal 3x)\n`);
  } else console.log('(wrk not installed: no C load generator figures)');
  const xdp = results.get(`xdp (${xdpMode})`)!;
  const big = results.get(`iptables ${LARGE / 1000}k`)!;
  console.log(
    `iptables rules: ${Number(process.env.FILLER_SERVICES ?? 500)} services ('iptables') and ${LARGE} ('iptables ${LARGE / 1000}k'); ` +
      `XDP vs iptables ${LARGE / 1000}k: req/s ${ratio(xdp.rps, big.rps)}, new conn/s ${ratio(xdp.cps, big.cps)} (goal 3x)`,
  );
} finally {
  await lab.down();
}
