// The `ferry` command: one entry point, one subcommand per job. Subcommands live in their own
// modules under src/cli/commands and register themselves here.
import { Command } from 'commander';
import { register as registerAgent } from './commands/agent.ts';
import { register as registerDemo } from './commands/demo.ts';
import { register as registerLab } from './commands/lab.ts';
import { register as registerService } from './commands/service.ts';
import { register as registerStatus } from './commands/status.ts';
import { register as registerObserve } from './commands/observe.ts';
import { register as registerExplain } from './commands/explain.ts';

const program = new Command()
  .name('ferry')
  .description('Ferry: an eBPF dataplane for Kubernetes Services')
  .showHelpAfterError();
registerAgent(program);
registerService(program);
registerStatus(program);
registerObserve(program);
registerExplain(program);
registerLab(program);
registerDemo(program);

await program.parseAsync(process.argv);
