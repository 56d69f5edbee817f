// The fault-injection tier prints what each injected fault does to Ferry, as a `fault | behaviour`
// table at the end of every file: the table is the operator-facing summary of the suite, and a
// row is only recorded after the test that observed the behaviour has asserted it.
import { after } from 'node:test';

export interface FaultTable {
  /** Record one observed behaviour; call it after the assertions that prove it. */
  row(fault: string, behaviour: string): void;
}

export function faultTable(title: string): FaultTable {
  const rows: [string, string][] = [];
  after(() => {
    if (rows.length === 0) return;
    const width = Math.max('fault'.length, ...rows.map(([f]) => f.length));
    const lines = [`\n${title}`, `${'fault'.padEnd(width)} | behaviour`, `${'-'.repeat(width)}-|-${'-'.repeat(9)}`];
    for (const [fault, behaviour] of rows) lines.push(`${fault.padEnd(width)} | ${behaviour}`);
    process.stdout.write(lines.join('\n') + '\n');
  });
  return { row: (fault, behaviour) => void rows.push([fault, behaviour]) };
}
