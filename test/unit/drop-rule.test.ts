// Issue #13's drop rule for the C datapath: a packet is never dropped silently. Every
// `return CTX_DROP` either is np_drop's own (counted and told as an event), or follows a counter or
// event call in the same block, or says on its line where it was reported (`reported:`). The C is
// not read by ESLint, so this test holds the rule, and proves it fires on deliberate violations.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { root } from './support/lint.ts';

const REPORTS = /\b(np_count|np_event|np_event_pkt|np_drop|np_forward_failed)\s*\(/;
const DROP = /\breturn\s+CTX_DROP\s*;/;

function indentOf(line: string): number {
  return /^\s*/.exec(line)![0].replace(/\t/g, '        ').length;
}

/** 1-based line numbers of drops with no report in their own block. */
export function silentDrops(code: string): number[] {
  const lines = code.split('\n');
  const silent: number[] = [];
  lines.forEach((line, i) => {
    if (!DROP.test(line) || /reported:/.test(line) || /reported:/.test(lines[i - 1] ?? '')) return;
    const depth = indentOf(line);
    // Walk back through the statements of the same block: a shallower line opens it.
    for (let j = i - 1; j >= 0; j--) {
      const previous = lines[j]!;
      if (previous.trim() === '') continue;
      if (indentOf(previous) < depth) break;
      if (REPORTS.test(previous)) return;
    }
    silent.push(i + 1);
  });
  return silent;
}

async function cSources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await cSources(full)));
    else if (/\.(c|h)$/.test(entry.name)) out.push(full);
  }
  return out;
}

test('every drop in bpf/ is counted or told where it happens', async () => {
  const found: string[] = [];
  let drops = 0;
  for (const file of await cSources(path.join(root, 'bpf'))) {
    const code = await readFile(file, 'utf8');
    drops += code.split('\n').filter((l) => DROP.test(l)).length;
    for (const line of silentDrops(code)) found.push(`${path.relative(root, file)}:${line}`);
  }
  assert.ok(drops >= 5, `the scan found only ${drops} drop sites: is it still reading bpf/?`);
  assert.deepEqual(found, [], 'drops that neither count nor emit an event');
});

test('the rule fires on a bare drop and on a drop after an unrelated call', () => {
  const code = [
    'static __always_inline int stage(ctx_t *ctx)',
    '{',
    '\tif (parse(ctx))',
    '\t\treturn CTX_DROP;',
    '\tif (rewrite(ctx)) {',
    '\t\tlog_it();',
    '\t\treturn CTX_DROP;',
    '\t}',
    '\tif (other(ctx)) {',
    '\t\tnp_count(NP_STAT_DROP_ERROR);',
    '\t\treturn CTX_DROP;',
    '\t}',
    '\tif (rst(ctx)) /* reported: the REJECTED event went out before the tail call */',
    '\t\treturn CTX_DROP;',
    '\treturn CTX_PASS;',
    '}',
  ].join('\n');
  assert.deepEqual(silentDrops(code), [4, 7]);
});
