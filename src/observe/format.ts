// `ferry observe` output: compact (one readable line per flow), json (one object per line) and
// table (aligned columns; cells never hold two spaces in a row, so a reader can split on them).
import type { Flow, FlowEndpoint } from './flow.ts';

export const FORMATS = ['compact', 'json', 'table'] as const;
export type Format = (typeof FORMATS)[number];

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `Nov 22 15:50:37.123` (UTC), as hubble prints it. */
export function shortTime(iso: string): string {
  const d = new Date(iso);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${MONTHS[d.getUTCMonth()]} ${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)}`;
}

function hostPort(ip: string | undefined, port: number | undefined): string {
  if (!ip) return port ? `:${port}` : '';
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return port ? `${host}:${port}` : host;
}

/** `default/n1-p2 (10.244.1.3)`, `10.244.1.3:40312`, `host`, or `?` when nothing is known. */
export function endpointText(e: FlowEndpoint | undefined): string {
  if (!e) return '-';
  const address = hostPort(e.ip, e.port);
  const who = e.pod ? `${e.namespace}/${e.pod}` : e.host ? 'host' : '';
  if (who && address) return `${who} (${address})`;
  return who || address || '?';
}

function serviceText(f: Flow): string {
  const s = f.service;
  if (!s) return '';
  if (!s.name) return `service#${s.id}`;
  return `${s.namespace}/${s.name}${s.portName ? `:${s.portName}` : ''}`;
}

function notes(f: Flow): string {
  return [f.origin, ...f.flags, ...(f.ctState ? [`ct:${f.ctState}`] : [])].join(',');
}

export function compact(f: Flow): string {
  const dst = `${hostPort(f.destination.ip, f.destination.port)}/${f.protocol}`;
  const svc = serviceText(f);
  const to = f.backend ? ` => ${endpointText(f.backend)}` : '';
  return `${shortTime(f.time)} [${f.node}] ${endpointText(f.source)} -> ${dst}${svc ? ` (${svc})` : ''}${to} ${f.verdict}${f.reason ? ` ${f.reason}` : ''} (${notes(f)})`;
}

export function json(f: Flow): string {
  return JSON.stringify(f);
}

export const TABLE_COLUMNS = ['TIME', 'NODE', 'SOURCE', 'DESTINATION', 'SERVICE', 'BACKEND', 'VERDICT', 'REASON', 'ORIGIN'] as const;

function cell(s: string): string {
  return s === '' ? '-' : s.replace(/\s+/g, '_');
}

export function tableCells(f: Flow): string[] {
  return [
    f.time,
    f.node,
    endpointText(f.source).replace(' (', '(').replace(/\s+/g, ''),
    `${hostPort(f.destination.ip, f.destination.port)}/${f.protocol}`,
    serviceText(f),
    f.backend ? endpointText(f.backend).replace(' (', '(').replace(/\s+/g, '') : '',
    f.verdict,
    f.reason ?? '',
    notes(f),
  ].map(cell);
}

/** Aligns rows into columns separated by at least two spaces. */
export function renderTable(rows: readonly (readonly string[])[], widths?: readonly number[]): string[] {
  const w = widths ?? TABLE_COLUMNS.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  '));
}

/** A streaming table: the header first, then rows padded to widths that only grow. */
export class TableWriter {
  readonly #widths: number[] = TABLE_COLUMNS.map((h) => h.length);
  #headerDone = false;

  lines(flows: readonly Flow[]): string[] {
    const rows = flows.map(tableCells);
    for (const r of rows) r.forEach((c, i) => (this.#widths[i] = Math.max(this.#widths[i]!, c.length)));
    const out = this.#headerDone ? [] : [[...TABLE_COLUMNS]];
    this.#headerDone = true;
    return renderTable([...out, ...rows], this.#widths);
  }
}

/** Parses table output back into records (tests; scripts that prefer it to json). */
export function parseTable(text: string): Record<string, string>[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const [header, ...rows] = lines;
  if (!header) return [];
  const names = header.trim().split(/\s{2,}/);
  return rows.map((r) => Object.fromEntries(r.trim().split(/\s{2,}/).map((c, i) => [names[i] ?? `col${i}`, c])));
}

export function formatter(format: Format): (flows: readonly Flow[]) => string[] {
  if (format === 'json') return (flows) => flows.map(json);
  if (format === 'compact') return (flows) => flows.map(compact);
  const table = new TableWriter();
  return (flows) => table.lines(flows);
}
