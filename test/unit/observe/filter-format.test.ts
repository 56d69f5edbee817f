// Filters (AND across fields, OR within one, --not for the next flag), the recent-flows ring, the
// enrichment of raw events, and the three output formats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkFilter, FilterBuilder, matches, parseFilters, type FlowFilter } from '../../../src/observe/filter.ts';
import { compact, formatter, parseTable, TABLE_COLUMNS, TableWriter } from '../../../src/observe/format.ts';
import { enrich, isoTime, type Directory, type Flow, type NetnsInfo } from '../../../src/observe/flow.ts';
import { RecentFlows } from '../../../src/observe/recent.ts';
import type { RawEvent } from '../../../src/datapath/events/codec.ts';
import { parseRequest } from '../../../src/observe/api.ts';

const base: RawEvent = {
  tsNs: 1_000_000_000n,
  sockCookie: 99n,
  cgroupId: 5n,
  netnsCookie: 6n,
  src: undefined,
  dst: '10.96.0.10',
  xlated: '10.244.2.7',
  srcPort: 0,
  dstPort: 80,
  xlatedPort: 7000,
  protocol: 6,
  origin: 'connect',
  verdict: 'TRANSLATED',
  reason: 'NONE',
  ctState: 'none',
  flags: [],
  serviceId: 3,
  backendId: 8,
  ifindex: 0,
  netnsInum: 4000,
};

const netns = new Map<number, NetnsInfo>([
  [4000, { pod: { namespace: 'shop', name: 'client-abc' }, addresses: ['10.244.1.3', 'fd00:10:244:1::3'] }],
  [4001, { host: true, addresses: [] }],
]);
const directory: Directory = {
  podByIp: (ip) => (ip === '10.244.2.7' ? { namespace: 'shop', name: 'web-1' } : ip === '10.244.1.9' ? { namespace: 'other', name: 'curl' } : undefined),
  netns: (inum) => netns.get(inum),
  serviceById: (id) => (id === 3 ? { namespace: 'shop', name: 'web', portName: 'http' } : undefined),
  serviceByNodePort: (port) => (port === 30080 ? { namespace: 'shop', name: 'web-np', portName: '' } : undefined),
};
const ctx = { node: 'node-1', bootToEpochNs: 1_700_000_000_000_000_000n, directory };
const flow = (e: Partial<RawEvent> = {}): Flow => enrich({ ...base, ...e }, ctx);

const translated = flow();
const refused = flow({ verdict: 'REJECTED', reason: 'NO_BACKEND', xlated: undefined, xlatedPort: 0, backendId: 0 });
const dropped = flow({ verdict: 'DROPPED', reason: 'NO_LOCAL_BACKEND', xlated: undefined, xlatedPort: 0, backendId: 0, netnsInum: 0, src: '10.244.1.9', srcPort: 5555 });
const bind = flow({ origin: 'bind', verdict: 'DROPPED', reason: 'NODEPORT_RESERVED', dst: '0.0.0.0', dstPort: 30080, xlated: undefined, xlatedPort: 0, backendId: 0, serviceId: 0, netnsInum: 4001 });
const udp = flow({ origin: 'sendmsg', protocol: 17, dstPort: 53, serviceId: 77, flags: ['affinity'] });
const all = [translated, refused, dropped, bind, udp];

test('enrich: pod by netns (and its address of the right family), Service by id, backend pod by address', () => {
  assert.equal(translated.time, '2023-11-14T22:13:21.000Z');
  assert.deepEqual(translated.source, { ip: '10.244.1.3', namespace: 'shop', pod: 'client-abc' });
  assert.deepEqual(translated.service, { id: 3, namespace: 'shop', name: 'web', portName: 'http' });
  assert.deepEqual(translated.backend, { ip: '10.244.2.7', port: 7000, namespace: 'shop', pod: 'web-1', id: 8 });
  assert.equal(translated.reason, undefined);
  assert.deepEqual(translated.socket, { cookie: '99', cgroupId: '5', netnsCookie: '6', netnsInum: 4000 });
  const v6 = flow({ dst: 'fd00:10:96::a', xlated: 'fd00:10:244:2::7' });
  assert.equal(v6.source.ip, 'fd00:10:244:1::3');
  assert.deepEqual(dropped.source, { ip: '10.244.1.9', port: 5555, namespace: 'other', pod: 'curl' }, 'by address when no netns');
  assert.deepEqual(bind.source, { host: true });
  assert.deepEqual(bind.service, { id: 0, namespace: 'shop', name: 'web-np', portName: '' }, 'a bind names the NodePort Service');
  assert.deepEqual(udp.service, { id: 77 }, 'an unknown id is kept, unnamed');
  assert.equal(JSON.stringify(JSON.parse(JSON.stringify(translated))), JSON.stringify(translated), 'plain JSON');
});

const pick = (filters: FlowFilter[]): Flow[] => all.filter((f) => matches(f, filters));
const build = (...steps: ([string, string] | 'not')[]): FlowFilter[] => {
  const b = new FilterBuilder();
  for (const s of steps) {
    if (s === 'not') b.not();
    else b.add(s[0] as never, s[1]);
  }
  return b.build();
};

test('filters: each field, AND across fields, OR within one, --not on the next flag only', () => {
  assert.deepEqual(pick(build(['verdict', 'dropped'])), [dropped, bind]);
  assert.deepEqual(pick(build(['drop-reason', 'no-local-backend'])), [dropped]);
  assert.deepEqual(pick(build(['drop-reason', 'none'])), [translated, udp]);
  assert.deepEqual(pick(build(['verdict', 'DROPPED'], 'not', ['drop-reason', 'NO_LOCAL_BACKEND'])), [bind]);
  assert.deepEqual(pick(build('not', ['verdict', 'DROPPED'], ['protocol', 'tcp'])), [translated, refused]);
  assert.deepEqual(pick(build(['service', 'web'])), [translated, refused, dropped]);
  assert.deepEqual(pick(build(['service', 'shop/web-np'])), [bind]);
  assert.deepEqual(pick(build(['service', 'other/web'])), []);
  assert.deepEqual(pick(build(['pod', 'web'])), [translated, udp], 'prefix of the backend pod');
  assert.deepEqual(pick(build(['from-pod', 'shop/client'])), [translated, refused, udp]);
  assert.deepEqual(pick(build(['to-pod', 'client'])), []);
  assert.deepEqual(pick(build(['namespace', 'other'])), [dropped]);
  assert.deepEqual(pick(build(['ip', '10.244.2.0/24'])), [translated, udp]);
  assert.deepEqual(pick(build(['from-ip', '10.244.1.9'])), [dropped]);
  assert.deepEqual(pick(build(['to-ip', '10.96.0.10'])), [translated, refused, dropped, udp]);
  assert.deepEqual(pick(build(['port', '30080'])), [bind]);
  assert.deepEqual(pick(build(['origin', 'sendmsg'])), [udp]);
  assert.deepEqual(pick(build(['node', 'node-2'])), []);
  assert.deepEqual(pick(build(['verdict', 'REJECTED,DROPPED'], ['origin', 'connect'])), [refused, dropped]);
  assert.deepEqual(pick(build(['origin', 'bind'], ['origin', 'sendmsg'])), [bind, udp], 'a repeated flag widens');
  assert.deepEqual(pick(build('not', ['origin', 'bind'], 'not', ['origin', 'sendmsg'])), [translated, refused, dropped]);
  assert.throws(() => build('not'), /--not must be followed/);
  assert.throws(() => checkFilter({ field: 'verdict', values: ['MAYBE'] }), /verdict: "MAYBE"/);
  assert.throws(() => checkFilter({ field: 'ip', values: ['10.0.0.300'] }), /neither an IP/);
  assert.throws(() => checkFilter({ field: 'port', values: ['70000'] }), /port/);
  assert.throws(() => checkFilter({ field: 'colour', values: ['red'] }), /unknown field/);
});

test('API requests are validated like CLI flags', () => {
  assert.deepEqual(parseRequest('{"last":5,"follow":true,"filters":[{"field":"verdict","values":["dropped"],"negate":true}]}'), {
    op: 'flows',
    last: 5,
    follow: true,
    filters: [{ field: 'verdict', values: ['DROPPED'], negate: true }],
  });
  assert.deepEqual(parseRequest('{"op":"status"}'), { op: 'status' });
  assert.throws(() => parseRequest('nope'), /not JSON/);
  assert.throws(() => parseRequest('{"last":-1}'), /last/);
  assert.throws(() => parseRequest('{"filters":{}}'), /array/);
  assert.throws(() => parseFilters([{ field: 'pod', values: [] }]), /non-empty/);
});

test('recent flows: bounded, oldest overwritten, last(n, filter) oldest first, live subscribers', () => {
  const ring = new RecentFlows(3);
  const seen: Flow[] = [];
  const off = ring.subscribe((f) => seen.push(f));
  for (const f of all) ring.add(f);
  assert.equal(ring.size, 3);
  assert.equal(ring.total, 5);
  assert.deepEqual(ring.last(10), [dropped, bind, udp]);
  assert.deepEqual(ring.last(2), [bind, udp]);
  assert.deepEqual(ring.last(10, (f) => f.verdict === 'DROPPED'), [dropped, bind]);
  assert.deepEqual(ring.last(0), []);
  off();
  ring.add(translated);
  assert.equal(seen.length, 5);
  assert.throws(() => new RecentFlows(0), /capacity/);
});

test('formats: compact reads as one line, json round-trips, the table splits back into its columns', () => {
  assert.equal(
    compact(translated),
    'Nov 14 22:13:21.000 [node-1] shop/client-abc (10.244.1.3) -> 10.96.0.10:80/TCP (shop/web:http) => shop/web-1 (10.244.2.7:7000) TRANSLATED (connect)',
  );
  assert.equal(compact(refused), 'Nov 14 22:13:21.000 [node-1] shop/client-abc (10.244.1.3) -> 10.96.0.10:80/TCP (shop/web:http) REJECTED NO_BACKEND (connect)');
  assert.match(compact(bind), /\[node-1\] host -> 0\.0\.0\.0:30080\/TCP \(shop\/web-np\) DROPPED NODEPORT_RESERVED \(bind\)$/);
  assert.match(compact(udp), /-> 10\.96\.0\.10:53\/UDP \(service#77\) => .* TRANSLATED \(sendmsg,affinity\)$/);
  assert.deepEqual(formatter('json')(all).map((l) => JSON.parse(l) as Flow), all);
  const lines = formatter('table')(all);
  const rows = parseTable(lines.join('\n'));
  assert.equal(rows.length, all.length);
  for (const [i, r] of rows.entries()) {
    assert.deepEqual(Object.keys(r), [...TABLE_COLUMNS]);
    assert.equal(r.VERDICT, all[i]!.verdict);
    assert.equal(r.REASON, all[i]!.reason ?? '-');
  }
  assert.equal(rows[0]!.SOURCE, 'shop/client-abc(10.244.1.3)');
  assert.equal(rows[3]!.BACKEND, '-');
  // Streaming: the header once, then rows.
  const w = new TableWriter();
  assert.equal(w.lines([]).length, 1);
  assert.equal(w.lines([translated]).length, 1);
});

test('isoTime agrees with Date#toISOString (its per-second cache included)', () => {
  for (const ms of [0, 1, 9, 10, 99, 100, 999, 1000, 1_700_000_000_007, 1_700_000_000_070, 1_700_000_000_700, 1_700_000_001_000, 1_700_000_000_999])
    assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
});
