// `ferry demo`: what `make demo` runs (see src/lab/demo.ts).
import { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('demo')
    .description('bring up a 3-node lab, run Ferry on every node and send traffic through the Service VIPs')
    .option('--keep', 'leave the lab running afterwards')
    .option('--manifests <dir>', 'manifest directory (default: deploy/standalone-example)')
    .action(async (o: { keep?: boolean; manifests?: string }) => {
      const { runDemo } = await import('../../lab/demo.ts');
      await runDemo({ keep: o.keep ?? false, ...(o.manifests ? { manifests: o.manifests } : {}) });
    });
}
