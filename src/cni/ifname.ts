// The one interface-name rule for both the CNI environment check and the wiring, so a name the
// plugin accepts is always one it can wire (the two used to disagree: `eth.0` passed the check,
// had addresses allocated, then failed in the wiring with an I/O error).
//
// Stricter than Linux's own rule (≤ 15 bytes, not . or .., no '/', ':' or whitespace): only
// letters, digits, '_' and '-'. A '.' is legal for the kernel but sysctl reads it as a path
// separator (net.ipv4.conf.eth.0.proxy_arp names eth/0), and the wiring sets per-interface
// sysctls; other characters reach `ip -batch` lines, where quoting is not worth the risk.
const NAME = /^[A-Za-z0-9_-]+$/;

/** Why `name` cannot be an interface name at all (the kernel's and the CNI spec's rule). */
export function linuxInterfaceNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'empty';
  if (Buffer.byteLength(name) > 15) return `longer than 15 bytes: ${JSON.stringify(name)}`;
  if (name === '.' || name === '..') return `not allowed: ${JSON.stringify(name)}`;
  if (/[/:\s]/.test(name)) return `contains '/', ':' or whitespace: ${JSON.stringify(name)}`;
  return undefined;
}

/** Why `name` cannot be a pod or host interface name, or undefined when it can. */
export function interfaceNameProblem(name: string): string | undefined {
  const linux = linuxInterfaceNameProblem(name);
  if (linux) return linux;
  if (!NAME.test(name)) return `only letters, digits, '_' and '-' are allowed: ${JSON.stringify(name)}`;
  return undefined;
}
