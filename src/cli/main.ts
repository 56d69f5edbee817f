// The `ferry` command: one entry point, one subcommand per job. Subcommands live in their own
// modules under src/cli/commands and register themselves here. Every failure, commander's usage
// errors included, ends here as one line on stderr and an exit code from src/cli/errors.ts.
import { Command, CommanderError } from 'commander';
import { register as registerAgent } from './commands/agent.ts';
import { register as registerDemo } from './commands/demo.ts';
import { register as registerLab } from './commands/lab.ts';
import { register as registerService } from './commands/service.ts';
import { register as registerStatus } from './commands/status.ts';
import { register as registerObserve } from './commands/observe.ts';
import { register as registerExplain } from './commands/explain.ts';
import { EXIT, debugDetail, debugRequested, describeFailure, withoutDebug } from './errors.ts';

const debug = debugRequested(process.argv.slice(2), process.env);

function fail(err: unknown): void {
  // Help was printed: asked for (--help, `ferry help status`: exit 0), or because a command was
  // missing (`ferry`, `ferry service` alone: a usage error).
  if (err instanceof CommanderError && ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(err.code)) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    return;
  }
  const { line, exitCode } = describeFailure(err);
  process.stderr.write(`ferry: ${line}\n`);
  if (debug) process.stderr.write(`${debugDetail(err)}\n`);
  process.exitCode = exitCode;
  // A failed command may leave a socket or a timer behind: do not let it keep the process up,
  // but give stdout and stderr the time to drain first.
  setTimeout(() => process.exit(exitCode), 1000).unref();
}

process.on('uncaughtException', (err) => {
  fail(err);
  process.exit(process.exitCode);
});
process.on('unhandledRejection', (err) => {
  fail(err);
  process.exit(process.exitCode);
});

const program = new Command()
  .name('ferry')
  .description('Ferry: an eBPF dataplane for Kubernetes Services')
  .option('--debug', 'on an error, print its stack too (or set FERRY_DEBUG=1)')
  .addHelpText(
    'after',
    '\nExit codes: 0 ok, 1 failed, 2 usage, 3 agent not running or datapath not installed, 4 datapath incomplete or agent not ready.',
  )
  // Settings are inherited by the subcommands registered below: errors are thrown (not exited)
  // and printed once, by fail().
  .exitOverride()
  .configureOutput({ outputError: () => {} });
registerAgent(program);
registerService(program);
registerStatus(program);
registerObserve(program);
registerExplain(program);
registerLab(program);
registerDemo(program);

try {
  await program.parseAsync(withoutDebug(process.argv));
} catch (err) {
  fail(err);
}
