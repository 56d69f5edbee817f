// Child process of `ferry agent --uninstall`, started inside the agent's network namespace:
// detaches north-south there and prints how many interfaces it cleaned.
import { NodeportDatapath } from '../datapath/nodeport/install.ts';

const runDir = process.argv[2];
if (!runDir) {
  process.stderr.write('uninstall-nodeport: missing run dir\n');
  process.exit(2);
}
process.stdout.write(`${NodeportDatapath.uninstall(runDir)}\n`);
