// One logger for the whole process: pino (structured JSON, cheap when a level is off) on stderr,
// so stdout stays free for command output. Components get child loggers that carry their name.
import { pino, type Logger } from 'pino';

const root: Logger = pino(
  { level: process.env.FERRY_LOG_LEVEL ?? 'info', base: { pid: process.pid } },
  pino.destination({ fd: 2, sync: true }),
);

export type { Logger };

export function logger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return root.child({ component, ...bindings });
}
