// One plugin invocation as the spec defines it. Environment in, config on
// stdin, a result (or an error object) on stdout, exit 0 on success and 1 on error.
import { readFileSync } from 'node:fs';
import { runCommand } from './plugin.ts';
import { CniCode, CniError, parseEnv, peekVersion } from './spec.ts';

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return ''; // no stdin at all (VERSION from a terminal)
  }
}

export async function main(): Promise<number> {
  const stdin = readStdin();
  const version = peekVersion(stdin);
  try {
    const output = await runCommand(parseEnv(process.env), stdin);
    if (output !== undefined) process.stdout.write(JSON.stringify(output) + '\n');
    return 0;
  } catch (error) {
    const cniError =
      error instanceof CniError
        ? error
        : new CniError(CniCode.ioFailure, (error as Error).message ?? String(error), '', { cause: error });
    process.stdout.write(JSON.stringify(cniError.toJson(version)) + '\n');
    // Logged to stderr only on failure, and loaded lazily: pino's import is a noticeable part of an ADD.
    const { logger } = await import('../common/log.ts');
    logger('cni').error({ code: cniError.cniCode, command: process.env.CNI_COMMAND }, cniError.message);
    return 1;
  }
}
