import { FAULT_KINDS, type FaultKind } from './faults.js';

export interface ClusterSoakReport {
  seconds: number;
  seed: number;
  runs: number;
  outcomes: Record<string, number>;
  startsRefused: number;
  cancels: number;
  faults: Record<FaultKind, number>;
  followers: number;
  pollers: number;
  resumes: number;
  resets: number;
  /** subscribes answered log_store_unavailable / database_busy (asked again) */
  refusals: number;
  pollFailures: number;
  /** pages at offset 0 when a later offset was asked (the stream started over): the poller started over */
  pollResets: number;
  /** runs whose `/logs/raw` was compared with the worker's own file */
  rawFiles: number;
  bytesCompared: number;
  overlaps: number;
  overlapSamples: number;
  leftoverProcesses: number;
  mismatches: string[];
  /**
   * finished runs whose log no store holds, as the hubs say (503): their worker's machine was lost,
   * then Redis restarted empty before they could be archived. Two faults at once, which only Redis
   * persistence or replicas survive: counted apart, not as mismatches.
   */
  lostToDoubleFaults: string[];
  /** faults that could not be injected or undone (the cluster not whole again): the soak's trouble, shown apart from the invariants */
  faultFailures: string[];
  /** parts that did not start at the first try (a loaded machine), started again */
  startFailures: string[];
  /** what happened when, for a report of a mismatch */
  timeline: string[];
}

export const emptyClusterReport = (seconds: number, seed: number): ClusterSoakReport => ({
  seconds, seed, runs: 0, outcomes: {}, startsRefused: 0, cancels: 0, faults: Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>,
  followers: 0, pollers: 0, resumes: 0, resets: 0, refusals: 0, pollFailures: 0, pollResets: 0, rawFiles: 0, bytesCompared: 0, overlaps: 0, overlapSamples: 0, leftoverProcesses: 0, mismatches: [], lostToDoubleFaults: [], faultFailures: [], startFailures: [], timeline: [],
});

const counts = (record: Record<string, number>) => Object.entries(record).map(([key, count]) => `${key} ${count}`).join(', ');

export const summariseCluster = (r: ClusterSoakReport) => [
  `cluster soak: ${r.seconds} s, seed ${r.seed}, runs ${r.runs} (${counts(r.outcomes)}), starts refused ${r.startsRefused}, cancels ${r.cancels}, faults ${Object.values(r.faults).reduce((a, b) => a + b, 0)}, clients ${r.followers} WebSocket followers (resumes ${r.resumes}, log_resets ${r.resets}, subscribes refused for a store ${r.refusals}) + ${r.pollers} HTTP pollers (failed requests ${r.pollFailures}, started over at a page at 0 ${r.pollResets}) + ${r.rawFiles} raw files, bytes compared ${r.bytesCompared}, mismatches ${r.mismatches.length}, logs lost to a double fault ${r.lostToDoubleFaults.length}, overlaps ${r.overlaps} (of ${r.overlapSamples} samples), leftover processes ${r.leftoverProcesses}`,
  `faults: ${counts(r.faults)}; faults that failed ${r.faultFailures.length}, parts started again after a failed start ${r.startFailures.length}`,
  ...r.lostToDoubleFaults.map((lost) => `lost to a double fault: ${lost}`),
  ...r.faultFailures.map((failure) => `fault failed: ${failure}`),
  ...r.startFailures.map((failure) => `start failed: ${failure}`),
].join('\n  ');
