import { test } from 'node:test';
import assert from 'node:assert/strict';
import { logger } from '../../../src/common/log.ts';
import { Parts, part } from '../../../src/agent/parts.ts';

const log = logger('test', {});
log.level = 'silent';

test('parts stop newest first, each once, and a failing stop does not keep the rest running', async () => {
  const stopped: string[] = [];
  const parts = new Parts(log);
  parts.add(part('maps', () => void stopped.push('maps')));
  parts.add(
    part('listener', () => {
      stopped.push('listener');
      throw new Error('stuck');
    }),
  );
  parts.add(part('source', async () => void stopped.push('source')));
  await parts.stopAll();
  await parts.stopAll();
  assert.deepEqual(stopped, ['source', 'listener', 'maps']);
});
