// IP families and family policy of a Service, as the API server settles them on create
// (pkg/registry/core/service/storage: initIPFamilyFields): the requested addresses and the named
// families must agree, and PreferDualStack/RequireDualStack add the cluster's other family.
import { ipFamily, type Family } from '../../common/ip.ts';
import type { IPFamily, ServiceSpec } from '../../model/k8s.ts';
import { AllocationError } from './allocation-error.ts';
import type { ServiceIpRange } from './ranges.ts';

export const FAMILY_NAME: Readonly<Record<Family, IPFamily>> = { 4: 'IPv4', 6: 'IPv6' };

/** Families and policy as upstream's `initIPFamilyFields` settles them. */
export function settleFamilies(
  object: string,
  spec: ServiceSpec,
  requested: readonly string[],
  ranges: ReadonlyMap<Family, ServiceIpRange>,
  primary: Family,
): { families: Family[]; policy: NonNullable<ServiceSpec['ipFamilyPolicy']> } {
  const given = spec.ipFamilies ?? [];
  const policy =
    spec.ipFamilyPolicy ??
    (given.length === 2 || requested.length === 2 ? 'RequireDualStack' : 'SingleStack');
  const families: Family[] = [];
  const max = Math.max(given.length, requested.length);
  for (let i = 0; i < max; i++) {
    const fromIp = requested[i] !== undefined ? ipFamily(requested[i]!) : undefined;
    const named = given[i];
    const fromName: Family | undefined = named === 'IPv4' ? 4 : named === 'IPv6' ? 6 : undefined;
    if (named !== undefined && fromName === undefined)
      throw new AllocationError(object, `spec.ipFamilies[${i}]`, `unknown family ${JSON.stringify(named)}`);
    if (fromIp !== undefined && fromName !== undefined && fromIp !== fromName)
      throw new AllocationError(
        object,
        `spec.clusterIPs[${i}]`,
        `${requested[i]} is not of family ${named}`,
      );
    families.push((fromName ?? fromIp)!);
  }
  if (families.length === 2 && families[0] === families[1])
    throw new AllocationError(object, 'spec.ipFamilies', 'the two families must differ');
  if (families.length === 2 && policy === 'SingleStack')
    throw new AllocationError(object, 'spec.ipFamilyPolicy', 'SingleStack allows one family');
  families.forEach((f, i) => {
    if (!ranges.has(f))
      throw new AllocationError(
        object,
        `spec.ipFamilies[${i}]`,
        `${FAMILY_NAME[f]} is not configured on this cluster`,
      );
  });
  if (families.length === 0) families.push(primary);
  if (policy !== 'SingleStack' && families.length === 1) {
    const other: Family = families[0] === 4 ? 6 : 4;
    if (ranges.has(other)) families.push(other);
    else if (policy === 'RequireDualStack')
      throw new AllocationError(
        object,
        'spec.ipFamilyPolicy',
        'RequireDualStack on a single-stack cluster',
      );
  }
  return { families, policy };
}
