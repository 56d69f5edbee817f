// LabelSelector matching as meta/v1 defines it: matchLabels and matchExpressions are ANDed, an
// empty selector matches everything. Validation rejects the malformed shapes (In with no values),
// so here they get the reading upstream's labels.Selector gives them: In with no values matches
// nothing, NotIn with no values matches everything.
import type { LabelSelector, LabelSelectorRequirement } from './api.ts';

function matchesRequirement(labels: Readonly<Record<string, string>>, r: LabelSelectorRequirement): boolean {
  const has = Object.hasOwn(labels, r.key);
  const values = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return has && values.includes(labels[r.key]!);
    case 'NotIn':
      return !has || !values.includes(labels[r.key]!);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    default:
      return false; // an operator validation refuses selects nothing
  }
}

export function matchesSelector(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (!Object.hasOwn(labels, k) || labels[k] !== v) return false;
  }
  return (selector.matchExpressions ?? []).every((r) => matchesRequirement(labels, r));
}
