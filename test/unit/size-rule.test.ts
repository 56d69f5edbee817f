// The size rule of issue #13: no source file over 400 lines, no function over 60. ESLint enforces it
// for src/ (eslint.config.js); these tests prove its rules still fire on a deliberate violation,
// and hold the C datapath (which ESLint does not read) to the same file and function limits.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { lintMessages, root } from './support/lint.ts';

const MAX_FILE_LINES = 400;
const MAX_FUNCTION_LINES = 60;

async function sizeErrors(file: string, code: string): Promise<string[]> {
  return (await lintMessages(file, code))
    .filter((m) => m.ruleId === 'max-lines' || m.ruleId === 'max-lines-per-function')
    .map((m) => m.ruleId ?? '');
}

function functionOf(lines: number): string {
  // The signature, `let`, `return` and closing brace are four of the lines.
  const body = Array.from({ length: lines - 4 }, (_, i) => `  total += ${i};`);
  return ['export function probe(): number {', '  let total = 0;', ...body, '  return total;', '}', ''].join(
    '\n',
  );
}

function constantsOf(lines: number): string {
  return Array.from({ length: lines }, (_, i) => `export const c${i} = ${i};`).join('\n') + '\n';
}

test('a src/ function over 60 lines fails lint; one of 60 does not', async () => {
  assert.deepEqual(await sizeErrors('src/lab/size-probe.ts', functionOf(MAX_FUNCTION_LINES + 1)), [
    'max-lines-per-function',
  ]);
  assert.deepEqual(await sizeErrors('src/lab/size-probe.ts', functionOf(MAX_FUNCTION_LINES)), []);
});

test('a src/ file over 400 lines fails lint; one of 400 does not', async () => {
  assert.deepEqual(await sizeErrors('src/observe/size-probe.ts', constantsOf(MAX_FILE_LINES + 1)), [
    'max-lines',
  ]);
  assert.deepEqual(await sizeErrors('src/observe/size-probe.ts', constantsOf(MAX_FILE_LINES)), []);
});

test('a declarative table may opt out of the function limit where it stands, saying why', async () => {
  const table = `// eslint-disable-next-line max-lines-per-function -- declarative table of probes\n${functionOf(MAX_FUNCTION_LINES + 20)}`;
  assert.deepEqual(await sizeErrors('src/cli/size-probe.ts', table), []);
});

async function cSources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && /\.[ch]$/.test(e.name))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

test('no bpf/ C source or header is over 400 lines', async () => {
  const files = await cSources(path.join(root, 'bpf'));
  assert.ok(files.length > 0, 'no C files found under bpf/');
  const over: string[] = [];
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    const lines = text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length;
    if (lines > MAX_FILE_LINES) over.push(`${path.relative(root, file)}: ${lines} lines`);
  }
  assert.deepEqual(over, [], `over ${MAX_FILE_LINES} lines`);
});

/**
 * The functions of a C file longer than `max` lines, not counting blank and comment lines. The
 * datapath is in kernel style: a function body opens with `{` alone in column 0 and closes with
 * `}` alone in column 0, which no struct, enum or map definition does.
 */
function longCFunctions(text: string, max: number): { line: number; lines: number }[] {
  const lines = text.split('\n');
  const long: { line: number; lines: number }[] = [];
  let start: number | undefined;
  lines.forEach((l, i) => {
    if (l === '{') start = i;
    else if (l === '}' && start !== undefined) {
      const code = lines.slice(start + 1, i).filter((x) => x.trim() !== '' && !/^\s*(\/\*|\*|\/\/)/.test(x));
      if (code.length > max) long.push({ line: start, lines: code.length });
      start = undefined;
    }
  });
  return long;
}

function cFunctionOf(lines: number): string {
  const body = Array.from({ length: lines }, (_, i) => `\tx += ${i};`);
  return ['static int probe(int x)', '{', '\t/* a comment does not count */', '', ...body, '}', ''].join(
    '\n',
  );
}

test('the C function check finds a body over 60 lines and passes one of 60', () => {
  assert.deepEqual(longCFunctions(cFunctionOf(MAX_FUNCTION_LINES + 1), MAX_FUNCTION_LINES), [
    { line: 1, lines: MAX_FUNCTION_LINES + 1 },
  ]);
  assert.deepEqual(longCFunctions(cFunctionOf(MAX_FUNCTION_LINES), MAX_FUNCTION_LINES), []);
});

test('no bpf/ C function is over 60 lines', async () => {
  const over: string[] = [];
  for (const file of await cSources(path.join(root, 'bpf'))) {
    for (const f of longCFunctions(await readFile(file, 'utf8'), MAX_FUNCTION_LINES))
      over.push(`${path.relative(root, file)}:${f.line + 1}: ${f.lines} lines`);
  }
  assert.deepEqual(over, [], `functions over ${MAX_FUNCTION_LINES} lines`);
});
