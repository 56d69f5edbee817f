// The local flow API over a real unix socket (in a temp dir, no kernel): root-only mode, history
// with filters, follow streaming, loss notices from the datapath counters, bad requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ObserveApiServer, request, type ApiMessage } from '../../../src/observe/api.ts';
import { RecentFlows } from '../../../src/observe/recent.ts';
import type { Flow } from '../../../src/observe/flow.ts';
import type { EventCounters } from '../../../src/datapath/events/codec.ts';

const flow = (i: number, verdict: Flow['verdict'] = 'TRANSLATED'): Flow => ({
  time: new Date(1_700_000_000_000 + i).toISOString(),
  node: 'node-1',
  origin: 'connect',
  verdict,
  protocol: 'TCP',
  source: { ip: `10.244.1.${i % 250}` },
  destination: { ip: '10.96.0.10', port: 80 },
  flags: [],
});

const counters = (rateLimited: number): EventCounters => ({ emitted: 0, lostRingFull: 0, rateLimited, sampledOut: 0, filtered: 0 });

async function collect(socket: string, req: Parameters<typeof request>[1]): Promise<ApiMessage[]> {
  const out: ApiMessage[] = [];
  for await (const m of request(socket, req)) out.push(m);
  return out;
}

test('the API: 0600 socket, last N with filters, follow with loss notices, errors as messages', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-api-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'observe.sock');
  fs.writeFileSync(socketPath, 'stale'); // a previous agent's leftover is replaced
  const flows = new RecentFlows(100);
  for (let i = 0; i < 10; i++) flows.add(flow(i, i % 3 === 0 ? 'DROPPED' : 'TRANSLATED'));
  let limited = 0;
  const server = await ObserveApiServer.listen({
    socketPath,
    flows,
    status: () => ({ node: 'node-1', events: counters(limited), buffer: { size: flows.size, capacity: flows.capacity, total: flows.total }, reader: { received: 10, decodeErrors: 0, pending: 0 }, clients: server.clients }),
    counters: () => counters(limited),
    lossPollMs: 50,
  });
  t.after(() => server.close());
  assert.equal(fs.statSync(socketPath).mode & 0o777, 0o600);

  const last = await collect(socketPath, { op: 'flows', last: 2, filters: [{ field: 'verdict', values: ['DROPPED'], negate: false }] });
  assert.deepEqual(last, [{ flow: flows.last(10)[6] }, { flow: flows.last(10)[9] }]);
  assert.equal((await collect(socketPath, { op: 'flows' })).length, 10, 'default: the last 20');
  const [status] = await collect(socketPath, { op: 'status' });
  assert.ok(status && 'status' in status && status.status.buffer.size === 10);

  // Follow: no history with last 0, then live flows that pass the filter, and a loss notice.
  const got: ApiMessage[] = [];
  const follow = (async () => {
    for await (const m of request(socketPath, { op: 'flows', last: 0, follow: true, filters: [{ field: 'verdict', values: ['TRANSLATED'], negate: false }] })) {
      got.push(m);
      if (got.length === 3) break;
    }
  })();
  await sleep(50);
  flows.add(flow(20, 'DROPPED'));
  flows.add(flow(21));
  limited = 7;
  flows.add(flow(22));
  await follow;
  assert.deepEqual(got.filter((m) => 'flow' in m).map((m) => ('flow' in m ? m.flow.time : '')), [flow(21).time, flow(22).time]);
  assert.deepEqual(got.find((m) => 'lost' in m), { lost: { rateLimited: 7 } });

  // Bad requests get an error line, not a hang.
  for (const [line, want] of [
    ['{"op":"dance"}', /unknown "dance"/],
    ['{"filters":[{"field":"verdict","values":["MAYBE"]}]}', /MAYBE/],
    ['not json', /not JSON/],
  ] as const) {
    const answer = await new Promise<string>((resolve) => {
      const s = net.createConnection(socketPath, () => s.write(`${line}\n`));
      let data = '';
      s.on('data', (d) => (data += d.toString()));
      s.on('end', () => resolve(data));
    });
    assert.match((JSON.parse(answer) as { error: string }).error, want);
  }
  await assert.rejects(collect(path.join(dir, 'nobody.sock'), { op: 'status' }), /no agent listening/);
  await server.close();
  assert.equal(fs.existsSync(socketPath), false, 'the socket file goes with the server');
});
