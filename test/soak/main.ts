/** `npm run soak -- [--cluster] --minutes N [--seed S]`: the chaos soak (embedded, or a cluster under faults) from the command line; exit 1 on any mismatch. */
import { runClusterSoak, summariseCluster } from './cluster/clusterSoak.js';
import { runSoak, summarise } from './soak.js';

const argument = (name: string) => {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? undefined : Number(process.argv[index + 1]);
};
const minutes = argument('minutes') ?? 5;
const seed = argument('seed') ?? Date.now() % 1_000_000;
const cluster = process.argv.includes('--cluster');
console.log(`soak${cluster ? ' (cluster)' : ''}: ${minutes} min, seed ${seed}`);
const options = { seconds: Math.round(minutes * 60), seed, log: console.log };
const { summary, mismatches } = cluster
  ? await runClusterSoak(options).then((report) => ({ summary: summariseCluster(report), mismatches: report.mismatches }))
  : await runSoak(options).then((report) => ({ summary: summarise(report), mismatches: report.mismatches }));
console.log(summary);
for (const mismatch of mismatches) console.log(`  mismatch: ${mismatch}`);
process.exit(mismatches.length === 0 ? 0 : 1);
