/** `npm run soak -- --minutes N [--seed S]`: the chaos soak from the command line; exit 1 on any mismatch. */
import { runSoak, summarise } from './soak.js';

const argument = (name: string) => {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? undefined : Number(process.argv[index + 1]);
};
const minutes = argument('minutes') ?? 5;
const seed = argument('seed') ?? Date.now() % 1_000_000;
console.log(`soak: ${minutes} min, seed ${seed}`);
const report = await runSoak({ seconds: Math.round(minutes * 60), seed, log: console.log });
console.log(summarise(report));
for (const mismatch of report.mismatches) console.log(`  mismatch: ${mismatch}`);
process.exit(report.mismatches.length === 0 ? 0 : 1);
