import { emptySearchFigures, type SearchFigures } from './logSearches.js';
import type { SlowFigures } from './slowClients.js';

export interface SoakReport {
  seconds: number;
  runs: number;
  outcomes: Record<string, number>;
  serverKills: number;
  serverStops: number;
  runnerKills: number;
  stateCorruptions: number;
  cancels: number;
  followers: number;
  /** of them, those that asked for the lines' times */
  timestamped: number;
  resumes: number;
  badInputs: number;
  bytesCompared: number;
  /** runs purged by the soak while clients followed them, and runs removed by retention */
  purges: number;
  retentionRemovals: number;
  /** followers of removed runs: told `run_removed`, found it gone on coming back, had read it all first */
  removedFollowers: { total: number; toldRemoved: number; foundGone: number; completeFirst: number };
  /** followers connected at a purge, and of them told within the limit */
  livePurgeFollowers: number;
  toldLive: number;
  /** webhook events expected (event × webhook), delivered 2xx, delivered more than once (same id), POSTs received; vanishings of a receiver */
  webhooks: { expected: number; delivered: number; repeats: number; posts: number; vanishes: number };
  searches: SearchFigures;
  slowClients: SlowFigures;
  /** `/api/health` answer times while the server was up, in ms; `down`: probes that met a restart; `controlP99`: a trivial server's beside it */
  health: { samples: number; p50: number; p99: number; max: number; down: number; controlP99: number };
  mismatches: string[];
  leftoverProcesses: number;
  fdsIdle: number;
  fdsEnd: number;
  maxRssMb: number;
  /** WebSockets open at that peak */
  socketsAtMaxRss: number;
  /** after the drain, idle */
  rssEndMb: number;
}

export const emptyReport = (seconds: number): SoakReport => ({
  seconds, runs: 0, outcomes: {}, serverKills: 0, serverStops: 0, runnerKills: 0, stateCorruptions: 0, cancels: 0, followers: 0, timestamped: 0, resumes: 0, badInputs: 0, bytesCompared: 0,
  purges: 0, retentionRemovals: 0, removedFollowers: { total: 0, toldRemoved: 0, foundGone: 0, completeFirst: 0 }, livePurgeFollowers: 0, toldLive: 0,
  webhooks: { expected: 0, delivered: 0, repeats: 0, posts: 0, vanishes: 0 }, searches: emptySearchFigures(), slowClients: { started: 0, endedByServer: {}, givenUp: 0 },
  health: { samples: 0, p50: 0, p99: 0, max: 0, down: 0, controlP99: 0 }, mismatches: [], leftoverProcesses: 0, fdsIdle: 0, fdsEnd: 0, maxRssMb: 0, socketsAtMaxRss: 0, rssEndMb: 0,
});

const counts = (record: Record<string, number>) => Object.entries(record).map(([key, count]) => `${key} ${count}`).join(', ');

export const summarise = (r: SoakReport) => [
  `soak: ${r.seconds} s, runs ${r.runs} (${counts(r.outcomes)}), server kills ${r.serverKills} + stops ${r.serverStops}, runner kills ${r.runnerKills}, state files damaged ${r.stateCorruptions}, cancels ${r.cancels}, clients ${r.followers} (${r.timestamped} asking for times), resumes ${r.resumes}, bad inputs ${r.badInputs}, bytes compared ${r.bytesCompared}, mismatches ${r.mismatches.length}, leftover processes ${r.leftoverProcesses}, server open files ${r.fdsEnd} at the end / ${r.fdsIdle} idle, server RSS max ${r.maxRssMb.toFixed(0)} MB (${r.socketsAtMaxRss} WebSockets open then), ${r.rssEndMb.toFixed(0)} MB at the end`,
  `removed runs: ${r.purges} purged, ${r.retentionRemovals} by retention; their followers ${r.removedFollowers.total}: told run_removed ${r.removedFollowers.toldRemoved}, found gone on return ${r.removedFollowers.foundGone}, read to complete first ${r.removedFollowers.completeFirst}; connected at a purge ${r.livePurgeFollowers}, told ${r.toldLive}`,
  `webhooks: ${r.webhooks.expected} events expected, ${r.webhooks.delivered} delivered (${r.webhooks.repeats} more than once, same id), ${r.webhooks.posts} POSTs received, receiver vanished ${r.webhooks.vanishes} times`,
  `searches: ${r.searches.searches} (${r.searches.matches} matches, ${r.searches.verified} read back from the file, ${r.searches.pieceOffsets} inside lines longer than a chunk; stopped: ${counts(r.searches.stopped)})`,
  `slow clients: ${r.slowClients.started} (ended by the server: ${counts(r.slowClients.endedByServer) || 'none'}; given up ${r.slowClients.givenUp})`,
  `/api/health: ${r.health.samples} answers, p50 ${r.health.p50.toFixed(1)} ms, p99 ${r.health.p99.toFixed(1)} ms, max ${r.health.max.toFixed(1)} ms (a trivial server probed beside it: p99 ${r.health.controlP99.toFixed(1)} ms); ${r.health.down} probes met a restart`,
].join('\n  ');
