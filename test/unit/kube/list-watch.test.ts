// The supervised list-watch against a small fake API server on loopback that can misbehave on
// cue: expire resourceVersions (410), drop the connection, or go silent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeClient } from '../../../src/sources/kube/client.ts';
import { ListWatch, type ListWatchChange } from '../../../src/sources/kube/list-watch.ts';

interface Obj {
  metadata: { name: string; namespace: string; resourceVersion: string };
  v: number;
}

class FakeApi {
  objects = new Map<string, Obj>();
  rv = 100;
  lists = 0;
  watches: http.ServerResponse[] = [];
  /** The next watch answers 410 Gone in-stream. */
  expireNextWatch = false;
  server = http.createServer((req, res) => this.#handle(req, res));

  put(name: string, v: number): Obj {
    const o = { metadata: { name, namespace: 'default', resourceVersion: String(++this.rv) }, v };
    const type = this.objects.has(name) ? 'MODIFIED' : 'ADDED';
    this.objects.set(name, o);
    this.#broadcast({ type, object: o });
    return o;
  }

  remove(name: string): void {
    const o = this.objects.get(name)!;
    this.objects.delete(name);
    this.rv++;
    this.#broadcast({
      type: 'DELETED',
      object: { ...o, metadata: { ...o.metadata, resourceVersion: String(this.rv) } },
    });
  }

  /** Ends every watch the way a server's watch timeout does: cleanly. */
  endWatches(): void {
    for (const w of this.watches) w.end();
    this.watches = [];
  }

  dropWatches(): void {
    for (const w of this.watches) w.destroy();
    this.watches = [];
  }

  #broadcast(event: unknown): void {
    for (const w of this.watches) w.write(JSON.stringify(event) + '\n');
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url!, 'http://x');
    res.setHeader('content-type', 'application/json');
    if (url.searchParams.get('watch') !== '1') {
      this.lists++;
      res.end(
        JSON.stringify({ metadata: { resourceVersion: String(this.rv) }, items: [...this.objects.values()] }),
      );
      return;
    }
    res.writeHead(200);
    if (this.expireNextWatch) {
      this.expireNextWatch = false;
      res.end(
        JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old' } }) + '\n',
      );
      return;
    }
    this.watches.push(res);
    res.on('close', () => (this.watches = this.watches.filter((w) => w !== res)));
  }
}

async function setup(t: import('node:test').TestContext, opts: { inactivityMs?: number } = {}) {
  const api = new FakeApi();
  api.server.listen(0, '127.0.0.1');
  await once(api.server, 'listening');
  const port = (api.server.address() as { port: number }).port;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-kube-'));
  const kubeconfig = path.join(dir, 'config');
  fs.writeFileSync(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]\n` +
      `users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
  );
  const changes: ListWatchChange<Obj>[] = [];
  const lw = new ListWatch<Obj>(KubeClient.fromOptions({ kubeconfig }), {
    path: '/api/v1/things',
    onChange: (c) => changes.push(c),
    backoffBaseMs: 10,
    backoffMaxMs: 50,
    ...opts,
  });
  t.after(async () => {
    await lw.close();
    api.dropWatches();
    api.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { api, lw, changes };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await sleep(10);
  assert.ok(cond(), `timed out waiting for ${what}`);
}

test('lists, then follows adds, updates and deletes through the watch', async (t) => {
  const { api, lw, changes } = await setup(t);
  api.put('a', 1);
  await lw.synced;
  assert.deepEqual(
    changes.map((c) => [c.previous?.v, c.current?.v]),
    [[undefined, 1]],
  );
  await until(() => api.watches.length === 1, 'watch');
  api.put('a', 2);
  api.put('b', 1);
  api.remove('a');
  await until(() => changes.length === 4, 'events');
  assert.deepEqual(
    changes
      .slice(1)
      .map((c) => [c.previous?.metadata.name ?? c.current?.metadata.name, c.previous?.v, c.current?.v]),
    [
      ['a', 1, 2],
      ['b', undefined, 1],
      ['a', 2, undefined],
    ],
  );
  assert.equal(lw.status().resourceVersion, String(api.rv));
});

test('410 Gone triggers a re-list that reports what changed while the watch was away', async (t) => {
  const { api, lw, changes } = await setup(t);
  api.put('a', 1);
  api.put('b', 1);
  await lw.synced;
  await until(() => api.watches.length === 1, 'watch');
  // The watch ends cleanly (a server timeout), so it is resumed from its resourceVersion; the
  // changes made meanwhile (b deleted, a changed, c added) are past what the server still holds.
  api.expireNextWatch = true;
  api.endWatches();
  api.objects.delete('b');
  api.objects.set('a', {
    metadata: { name: 'a', namespace: 'default', resourceVersion: String(++api.rv) },
    v: 9,
  });
  api.objects.set('c', {
    metadata: { name: 'c', namespace: 'default', resourceVersion: String(++api.rv) },
    v: 1,
  });
  await until(() => api.lists === 2 && api.watches.length === 1, 're-list');
  const after = changes
    .slice(2)
    .map((c) => [c.previous?.metadata.name ?? c.current?.metadata.name, c.previous?.v, c.current?.v]);
  assert.deepEqual(after.sort(), [
    ['a', 1, 9],
    ['b', 1, undefined],
    ['c', undefined, 1],
  ]);
  assert.equal(lw.status().relists, 2);
});

test('a broken connection re-lists before watching again, as client-go does, and reports the difference', async (t) => {
  const { api, lw, changes } = await setup(t);
  api.put('a', 1);
  api.put('b', 1);
  await lw.synced;
  await until(() => api.watches.length === 1, 'watch');
  api.dropWatches();
  api.objects.delete('b');
  await until(() => api.lists === 2 && api.watches.length === 1, 're-list');
  assert.deepEqual(
    changes.slice(2).map((c) => [c.previous?.metadata.name, c.current?.metadata.name]),
    [['b', undefined]],
  );
  assert.equal(lw.status().relists, 2);
  assert.ok(lw.status().restarts >= 1);
});

test('a silent watch is restarted by the inactivity watchdog and resumes from its resourceVersion', async (t) => {
  const { api, lw, changes } = await setup(t, { inactivityMs: 100 });
  await lw.synced;
  await until(() => api.watches.length === 1, 'watch');
  const first = api.watches[0];
  await until(() => api.watches.length === 1 && api.watches[0] !== first, 'restarted watch');
  assert.ok(lw.status().restarts >= 1);
  assert.equal(api.lists, 1, 'a restart resumes the watch, it does not re-list');
  api.put('z', 1);
  await until(() => changes.length === 1, 'event after restart');
});

test('errors are retried with backoff and recorded in status', async (t) => {
  const { api, lw } = await setup(t);
  await lw.synced;
  api.server.close();
  api.dropWatches();
  await until(() => lw.status().restarts >= 2, 'restarts');
  assert.match(lw.status().lastError ?? '', /ECONNREFUSED/);
  assert.ok(lw.status().lastEventAgeMs >= 0);
});
