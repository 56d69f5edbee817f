// `ferry status`: programs attached, map fill, the agent's last sync and the objects it refused,
// and whether it is all true now: the agent behind the status file must be alive and answer on its
// socket, and the datapath must be complete, else one line on stderr says what is wrong and the
// exit code is 3 (not running / not installed) or 4 (incomplete / not ready).
import path from 'node:path';
import Table from 'cli-table3';
import { Command, Option } from 'commander';
import { DEFAULT_PIN_DIR, DEFAULT_RUN_DIR } from './agent.ts';

const API_SOCKET = 'observe.sock'; // src/observe/api.ts; not imported to keep the CLI start light

export function register(program: Command): void {
  program
    .command('status')
    .description('programs attached, map fill, last sync and errors; exits 3 if the agent is not running, 4 if the datapath is incomplete')
    .option('--pin-dir <dir>', 'bpffs directory of the node', DEFAULT_PIN_DIR)
    .option('--run-dir <dir>', "the agent's run directory", DEFAULT_RUN_DIR)
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (o: { pinDir: string; runDir: string; output: string }) => {
      const { collectStatus } = await import('../inspect.ts');
      const { assessHealth, probeApiSocket, processState } = await import('../agent-health.ts');
      const report = collectStatus(o.pinDir, o.runDir);
      const a = report.agent;
      const socketPath = a?.apiSocket ?? path.join(o.runDir, API_SOCKET);
      const proc = a ? processState(a.pid) : undefined;
      const expected = report.programs.attached.length + report.programs.missing.length;
      const health = assessHealth({
        statusFile: report.statusFile,
        status: a ? { pid: a.pid, agent: a } : undefined,
        processState: proc,
        socketPath,
        socket: a ? await probeApiSocket(socketPath) : undefined,
        socketNamed: typeof a?.apiSocket === 'string',
        programsAttached: expected - report.programs.missing.length,
        programsExpected: expected,
        pinDir: o.pinDir,
      });
      process.exitCode = health.exitCode;
      if (o.output === 'json') console.log(JSON.stringify({ ...report, health }, null, 2));
      else printTable(report, health);
      // One line for the operator (the worst problem); the others are in the report above.
      if (health.problems.length) process.stderr.write(`ferry: status: ${health.problems[0]}${health.problems.length > 1 ? ` (and ${health.problems.length - 1} more problem(s), listed on stdout)` : ''}\n`);
    });
}

type Report = ReturnType<typeof import('../inspect.ts').collectStatus>;

type Health = ReturnType<typeof import('../agent-health.ts').assessHealth>;

function printTable(report: Report, health: Health): void {
  const expected = report.programs.attached.length + report.programs.missing.length;
  console.log(`Programs: ${expected - report.programs.missing.length}/${expected} attached${report.programs.missing.length ? ` (missing: ${report.programs.missing.join(', ')})` : ''}`);
  const maps = new Table({ head: ['Map', 'Entries', 'Capacity', 'Fill'], style: { head: [], border: [] } });
  for (const m of report.maps) maps.push([m.name, m.entries, m.capacity, `${((100 * m.entries) / m.capacity).toFixed(1)}%`]);
  console.log(maps.toString());
  const ev = report.events;
  if (ev) console.log(`Events: ${ev.emitted} emitted, ${ev.lostRingFull} lost (ring full), ${ev.rateLimited} rate limited, ${ev.sampledOut} sampled out, ${ev.filtered} off by config`);
  const a = report.agent;
  if (a) {
    const last = a.lastSync;
    console.log(`Agent: pid ${a.pid}, ${a.ready ? 'ready' : 'NOT ready'}, ${a.services} services, ${a.frontends} frontends (from ${report.statusFile})`);
    console.log(`Syncs: ${a.syncs} (${a.failedSyncs} failed)${last ? `, last ${new Date(last.at).toISOString()} ${last.ok ? 'ok' : 'FAILED'} in ${last.durationMs.toFixed(2)} ms` : ''}`);
    for (const e of a.invalidObjects) console.log(`Invalid: ${e.message}`);
    for (const i of report.sourceIssues) console.log(`Source: ${i.file ? `${i.file}: ` : ''}${i.message}`);
    for (const w of a.warnings) console.log(`Warning: ${w}`);
  } else console.log(`Agent: no status file ${report.statusFile}`);
  for (const n of health.notes) console.log(`Note: ${n}`);
  for (const p of health.problems) console.log(`Problem: ${p}`);
  console.log(`Health: ${health.problems.length ? 'NOT OK' : 'ok'}`);
}
