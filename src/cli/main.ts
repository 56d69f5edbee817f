// The `ferry` command: one entry point, one subcommand per job. Subcommands live in their own
// modules under src/cli/commands and register themselves here.
import { Command } from 'commander';
import { register as registerLab } from './commands/lab.ts';

const program = new Command()
  .name('ferry')
  .description('Ferry: an eBPF dataplane for Kubernetes Services')
  .showHelpAfterError();
registerLab(program);

await program.parseAsync(process.argv);
