// `ferry service list`: what the datapath holds, read straight from the pinned maps (works with
// the agent down), in the spirit of `cilium service list`.
import Table from 'cli-table3';
import { Command, Option } from 'commander';
import { DEFAULT_PIN_DIR } from './agent.ts';
import { requireDatapath } from '../pins.ts';

export function register(program: Command): void {
  const service = program.command('service').description('services programmed in the datapath');
  service
    .command('list')
    .description('list frontends and their backends from the pinned maps')
    .option('--pin-dir <dir>', 'bpffs directory of the node', DEFAULT_PIN_DIR)
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (o: { pinDir: string; output: string }) => {
      requireDatapath(o.pinDir);
      const { listServices } = await import('../inspect.ts');
      const rows = listServices(o.pinDir);
      if (o.output === 'json') {
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      const table = new Table({ head: ['ID', 'Frontend', 'Type', 'Scope', 'Backends'], style: { head: [], border: [] } });
      for (const r of rows) {
        const backends =
          r.action !== 'forward'
            ? r.action === 'reject' ? '(no endpoints: reject)' : '(none on this node: drop)'
            : r.backends.map((b, i) => `${i + 1} => ${b.address} (${b.state}${b.local ? ', local' : ''})`).join('\n');
        table.push([r.id, r.frontend, r.type + (r.affinityTimeoutSeconds ? ` affinity=${r.affinityTimeoutSeconds}s` : ''), r.scope, backends]);
      }
      console.log(table.toString());
    });
}
