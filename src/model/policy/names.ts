// Name rules of k8s.io/apimachinery/pkg/util/validation that policy needs: label keys and
// values, DNS labels and subdomains, IANA_SVC_NAME port names. src/model/validate.ts keeps its
// own private copies for Services; these are exported for the policy model's modules and tests.

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** A qualified name: optional DNS-subdomain prefix (≤ 253) and "/", then a name of ≤ 63. */
export function isLabelKey(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash >= 0 && key.indexOf('/', slash + 1) >= 0) return false;
  const name = slash < 0 ? key : key.slice(slash + 1);
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)))
    return false;
  return name.length >= 1 && name.length <= 63 && LABEL_NAME.test(name);
}

export function isLabelValue(value: string): boolean {
  return value === '' || (value.length <= 63 && LABEL_NAME.test(value));
}

/** IANA_SVC_NAME (RFC 6335): 1-15 of [-a-z0-9], a letter somewhere, no hyphen at an end or twice in a row. */
export function isPortName(name: string): boolean {
  return /^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/.test(name) && /[a-z]/.test(name) && !name.includes('--');
}
