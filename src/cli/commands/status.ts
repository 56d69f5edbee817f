// `ferry status`: programs attached, map fill, the agent's last sync and the objects it refused.
import Table from 'cli-table3';
import { Command, Option } from 'commander';
import { DEFAULT_PIN_DIR, DEFAULT_RUN_DIR } from './agent.ts';

const PROGRAM_COUNT = 10; // bpf/sock.c entry points

export function register(program: Command): void {
  program
    .command('status')
    .description('programs attached, map fill, last sync and errors')
    .option('--pin-dir <dir>', 'bpffs directory of the node', DEFAULT_PIN_DIR)
    .option('--run-dir <dir>', "the agent's run directory", DEFAULT_RUN_DIR)
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (o: { pinDir: string; runDir: string; output: string }) => {
      const { collectStatus } = await import('../inspect.ts');
      const report = collectStatus(o.pinDir, o.runDir);
      if (o.output === 'json') {
        console.log(JSON.stringify(report, null, 2));
        return;
      }
      console.log(`Programs: ${report.programs.attached.length}/${PROGRAM_COUNT} attached${report.programs.missing.length ? ` (missing: ${report.programs.missing.join(', ')})` : ''}`);
      const maps = new Table({ head: ['Map', 'Entries', 'Capacity', 'Fill'], style: { head: [], border: [] } });
      for (const m of report.maps) maps.push([m.name, m.entries, m.capacity, `${((100 * m.entries) / m.capacity).toFixed(1)}%`]);
      console.log(maps.toString());
      const ev = report.events;
      if (ev) console.log(`Events: ${ev.emitted} emitted, ${ev.lostRingFull} lost (ring full), ${ev.rateLimited} rate limited, ${ev.sampledOut} sampled out, ${ev.filtered} off by config`);
      const a = report.agent;
      if (!a) {
        console.log('Agent: no status file (not running here, or never ran)');
        return;
      }
      const last = a.lastSync;
      console.log(`Agent: pid ${a.pid ?? '?'}, ${a.ready ? 'ready' : 'NOT ready'}, ${a.services} services, ${a.frontends} frontends`);
      console.log(`Syncs: ${a.syncs} (${a.failedSyncs} failed)${last ? `, last ${new Date(last.at).toISOString()} ${last.ok ? 'ok' : 'FAILED'} in ${last.durationMs.toFixed(2)} ms` : ''}`);
      for (const e of a.invalidObjects) console.log(`Invalid: ${e.message}`);
      for (const i of report.sourceIssues) console.log(`Source: ${i.file ? `${i.file}: ` : ''}${i.message}`);
      for (const w of a.warnings) console.log(`Warning: ${w}`);
    });
}
