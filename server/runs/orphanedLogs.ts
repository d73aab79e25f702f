import fs from 'node:fs';
import path from 'node:path';
import type pino from 'pino';

/** Where files the database does not own are moved: `<logs>/orphaned/<when>/<projectId>/<file>`. */
export const ORPHANED_DIR = 'orphaned';

const RUN_FILE = /^([1-9][0-9]*)\.(log|json|times)/;

/** Moves one run file aside, keeping it for whoever wants to read it; returns where it went. */
export function moveAside(logsDir: string, file: string, stamp = new Date()): string {
  const projectDir = path.basename(path.dirname(file));
  const target = path.join(logsDir, ORPHANED_DIR, stamp.toISOString().replace(/[:.]/g, '-'), projectDir, path.basename(file));
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.renameSync(file, target);
  return target;
}

/** Which of these run ids of a project the database holds. */
export type OwnedOf = (projectId: number, runIds: readonly number[]) => Promise<Set<number>>;

/** Run ids asked about per query: the store is asked about the files found, never for every run it holds. */
const ASK_BATCH = 1000;

/**
 * A fresh database over a kept logs folder starts run ids at 1 again: a new run would append to an
 * old run's log, and its subscribers would read someone else's bytes. At start, every run file
 * whose run the database does not hold (for that project) is moved aside.
 */
export async function moveAsideOrphanedLogs(logsDir: string, ownedOf: OwnedOf, log: pino.Logger): Promise<number> {
  const stamp = new Date();
  let moved = 0;
  let projects: string[];
  try {
    projects = fs.readdirSync(logsDir).filter((name) => /^[1-9][0-9]*$/.test(name));
  } catch {
    return 0;
  }
  for (const projectId of projects) {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(logsDir, projectId));
    } catch {
      continue; // not a directory
    }
    const files = names.flatMap((name) => {
      const match = RUN_FILE.exec(name);
      return match ? [{ name, runId: Number(match[1]) }] : [];
    });
    for (let start = 0; start < files.length; start += ASK_BATCH) {
      const batch = files.slice(start, start + ASK_BATCH);
      const owned = await ownedOf(Number(projectId), [...new Set(batch.map((file) => file.runId))]);
      for (const { name, runId } of batch) {
        if (owned.has(runId)) continue;
        const file = path.join(logsDir, projectId, name);
        try {
          const target = moveAside(logsDir, file, stamp);
          moved++;
          log.warn({ file, moved_to: target }, 'a run file the database does not know of was moved aside (was the database replaced?)');
        } catch (error) {
          log.error({ err: error, file }, 'could not move aside a run file the database does not know of');
        }
      }
    }
  }
  return moved;
}
