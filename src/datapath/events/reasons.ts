// Names of the datapath's verdicts, reasons and counter slots, in the C order of bpf/lib/reasons.h:
// SOCK_REASONS is enum sock_reason (the slots of ferry_sock_counters_v2), NP_STAT_NAMES enum
// np_stat (ferry_np_stats_v1), REASONS enum ferry_reason and VERDICTS enum ferry_verdict (a flow
// event's and an explanation's). test/kernel/observe/reasons.test.ts checks each against the enum
// in the objects' BTF, so a C change not made here fails a test. Append only: the numbers are read from pinned maps by a newer or older agent.

export const SOCK_REASONS = [
  'translated',
  'reject_no_backend',
  'drop_policy',
  'drop_missing_backend',
  'affinity_hit',
  'revnat',
  'bind_refused',
  'revnat_update_fail',
  'drop_family_mismatch',
  'reject_no_service',
] as const;

export const NP_STAT_NAMES = [
  'pass',
  'dnat',
  'ct_hit',
  'revnat',
  'ct_new',
  'ct_expired',
  'snat',
  'icmp_xlate',
  'reject_tcp',
  'reject_udp',
  'drop_no_local_backend',
  'drop_source_range',
  'drop_snat_ports_exhausted',
  'drop_no_backend',
  'drop_missed_tail_call',
  'drop_error',
  'ct_create_fail',
  'redirect',
  'dsr',
  'dsr_backend',
] as const;
export type NpStat = (typeof NP_STAT_NAMES)[number];

export const REASONS = [
  'NONE',
  'NO_BACKEND',
  'NO_LOCAL_BACKEND',
  'SOURCE_RANGE',
  'CT_FULL',
  'NAT_PORTS_EXHAUSTED',
  'MALFORMED',
  'MISSED_TAIL_CALL',
  'BACKEND_MISSING',
  'FAMILY_MISMATCH',
  'NODEPORT_RESERVED',
  'NO_SERVICE',
] as const;
export type Reason = (typeof REASONS)[number] | `UNKNOWN_${number}`;

/** enum ferry_verdict; index 0 is unused by the C side. */
export const VERDICTS = ['', 'TRANSLATED', 'FORWARDED', 'DROPPED', 'REJECTED'] as const;
export type Verdict = Exclude<(typeof VERDICTS)[number], ''> | `UNKNOWN_${number}`;

/** The name at index n, or `UNKNOWN_<n>` for a number this build does not know (a newer object). */
export function named<T extends string>(names: readonly T[], n: number): T | `UNKNOWN_${number}` {
  const name = names[n];
  return name === undefined || name === '' ? `UNKNOWN_${n}` : name;
}
