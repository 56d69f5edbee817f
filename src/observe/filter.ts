// Flow filters, shaped like hubble observe's: each filter names a field and one or more values
// (any value may match), filters combine with AND, and `negate` (the CLI's `--not`) inverts one
// filter. The same code runs in the agent (the API filters before sending) and in tests.
import { InvalidArgumentError } from '../common/errors.ts';
import { canonicalIp, cidrContains, parseCidr, parseIp } from '../common/ip.ts';
import { ORIGINS, REASONS, VERDICTS } from '../datapath/events/codec.ts';
import type { Flow, FlowEndpoint } from './flow.ts';

export const FILTER_FIELDS = [
  'pod',
  'from-pod',
  'to-pod',
  'namespace',
  'service',
  'ip',
  'from-ip',
  'to-ip',
  'port',
  'protocol',
  'verdict',
  'drop-reason',
  'node',
  'origin',
] as const;
export type FilterField = (typeof FILTER_FIELDS)[number];

export interface FlowFilter {
  readonly field: FilterField;
  readonly values: readonly string[];
  readonly negate: boolean;
}

const upper = (s: string): string => s.trim().toUpperCase().replaceAll('-', '_');

/** Checks and normalises one filter; throws InvalidArgumentError naming the field and value. */
export function checkFilter(filter: { field: string; values: readonly string[]; negate?: boolean }): FlowFilter {
  const field = filter.field as FilterField;
  if (!FILTER_FIELDS.includes(field)) throw new InvalidArgumentError(`filter: unknown field "${filter.field}" (one of ${FILTER_FIELDS.join(', ')})`);
  if (!Array.isArray(filter.values) || filter.values.length === 0 || filter.values.some((v) => typeof v !== 'string' || v.trim() === ''))
    throw new InvalidArgumentError(`filter ${field}: values must be non-empty strings`);
  const values = filter.values.map((raw) => {
    const v = raw.trim();
    switch (field) {
      case 'ip':
      case 'from-ip':
      case 'to-ip':
        if (!parseIp(v) && !parseCidr(v)) throw new InvalidArgumentError(`filter ${field}: "${v}" is neither an IP address nor a CIDR`);
        return canonicalIp(v) ?? v;
      case 'port': {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`filter port: "${v}" is not a port number`);
        return String(n);
      }
      case 'protocol':
        return v.toUpperCase();
      case 'verdict':
        if (!VERDICTS.includes(upper(v) as (typeof VERDICTS)[number]) || v === '')
          throw new InvalidArgumentError(`filter verdict: "${v}" (one of ${VERDICTS.filter(Boolean).join(', ')})`);
        return upper(v);
      case 'drop-reason':
        if (!REASONS.includes(upper(v) as (typeof REASONS)[number]))
          throw new InvalidArgumentError(`filter drop-reason: "${v}" (one of ${REASONS.join(', ')})`);
        return upper(v);
      case 'origin':
        if (!ORIGINS.includes(v.toLowerCase() as (typeof ORIGINS)[number]))
          throw new InvalidArgumentError(`filter origin: "${v}" (one of ${ORIGINS.join(', ')})`);
        return v.toLowerCase();
      default:
        return v;
    }
  });
  return { field, values, negate: filter.negate === true };
}

/** Validates filters arriving over the API (untrusted JSON). */
export function parseFilters(input: unknown): FlowFilter[] {
  if (input === undefined) return [];
  if (!Array.isArray(input)) throw new InvalidArgumentError('filters: expected an array');
  return input.map((f: unknown, i) => {
    if (typeof f !== 'object' || f === null) throw new InvalidArgumentError(`filters[${i}]: expected an object`);
    const o = f as Record<string, unknown>;
    return checkFilter({ field: String(o.field), values: o.values as string[], negate: o.negate === true });
  });
}

function podMatches(e: FlowEndpoint | undefined, value: string): boolean {
  if (!e?.pod) return false;
  const slash = value.indexOf('/');
  if (slash >= 0) return e.namespace === value.slice(0, slash) && e.pod.startsWith(value.slice(slash + 1));
  return e.pod.startsWith(value);
}

function ipMatches(ip: string | undefined, value: string): boolean {
  if (!ip) return false;
  if (!value.includes('/')) return ip === value;
  const cidr = parseCidr(value);
  const addr = parseIp(ip);
  return cidr !== undefined && addr !== undefined && cidrContains(cidr, addr);
}

function serviceMatches(f: Flow, value: string): boolean {
  const s = f.service;
  if (!s?.name) return false;
  const slash = value.indexOf('/');
  return slash >= 0 ? s.namespace === value.slice(0, slash) && s.name === value.slice(slash + 1) : s.name === value;
}

function valueMatches(f: Flow, field: FilterField, v: string): boolean {
  switch (field) {
    case 'pod':
      return podMatches(f.source, v) || podMatches(f.backend, v);
    case 'from-pod':
      return podMatches(f.source, v);
    case 'to-pod':
      return podMatches(f.backend, v);
    case 'namespace':
      return f.source.namespace === v || f.backend?.namespace === v || f.service?.namespace === v;
    case 'service':
      return serviceMatches(f, v);
    case 'ip':
      return ipMatches(f.source.ip, v) || ipMatches(f.destination.ip, v) || ipMatches(f.backend?.ip, v);
    case 'from-ip':
      return ipMatches(f.source.ip, v);
    case 'to-ip':
      return ipMatches(f.destination.ip, v) || ipMatches(f.backend?.ip, v);
    case 'port': {
      const n = Number(v);
      return f.source.port === n || f.destination.port === n || f.backend?.port === n;
    }
    case 'protocol':
      return f.protocol.toUpperCase() === v;
    case 'verdict':
      return f.verdict === v;
    case 'drop-reason':
      return (f.reason ?? 'NONE') === v;
    case 'node':
      return f.node === v;
    case 'origin':
      return f.origin === v;
  }
}

export function matches(f: Flow, filters: readonly FlowFilter[]): boolean {
  for (const filter of filters) {
    const hit = filter.values.some((v) => valueMatches(f, filter.field, v));
    if (hit === filter.negate) return false;
  }
  return true;
}

/**
 * Builds filters from CLI flags in the order given: `--not` negates the next filter flag only;
 * different fields combine with AND; values of one field (repeated flag or a comma list) with OR.
 */
export class FilterBuilder {
  readonly #filters: FlowFilter[] = [];
  #negateNext = false;

  not(): void {
    this.#negateNext = true;
  }

  add(field: FilterField, value: string): void {
    const next = checkFilter({ field, values: value.split(',').filter((v) => v.trim() !== ''), negate: this.#negateNext });
    this.#negateNext = false;
    // As hubble: `--pod a --pod b` is either pod, so a repeated flag widens its filter.
    const i = this.#filters.findIndex((f) => f.field === field && f.negate === next.negate);
    if (i < 0) this.#filters.push(next);
    else this.#filters[i] = { ...next, values: [...this.#filters[i]!.values, ...next.values] };
  }

  build(): FlowFilter[] {
    if (this.#negateNext) throw new InvalidArgumentError('--not must be followed by a filter flag');
    return [...this.#filters];
  }
}
