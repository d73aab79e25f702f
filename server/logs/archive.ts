import fs from 'node:fs/promises';
import path from 'node:path';
import type { LogHandle } from './logSource.js';

/**
 * Where finished logs are kept for good in cluster mode (the streams are only for runs being
 * written): a directory on a volume every hub and worker mounts. Another store (S3) would implement
 * the same two calls.
 */
export interface ObjectStore {
  /** Stores the file under `key`, whole or not at all (a reader never sees half of it). */
  put(key: string, file: string): Promise<void>;
  /** Stores `bytes` under `key`, whole or not at all (a chunk of a running log: small, in memory). */
  putBytes(key: string, bytes: Buffer): Promise<void>;
  /** A handle for positional reads of `key`; null if it is not stored. */
  open(key: string): Promise<LogHandle | null>;
  /** Removes `key` (nothing if it is not stored). */
  delete(key: string): Promise<void>;
  /** Readiness: resolves if the store can be used now (the caller bounds the wait). */
  check(): Promise<void>;
}

export const archiveKey = (projectId: number, runId: number) => `${projectId}/${runId}.log`;
/** The log's time records (see lineTimes.ts), beside it. */
export const archiveTimesKey = (projectId: number, runId: number) => `${projectId}/${runId}.times`;

export class DirectoryObjectStore implements ObjectStore {
  constructor(private readonly dir: string) {}

  put(key: string, file: string): Promise<void> {
    return this.storeWhole(key, (temporary) => fs.copyFile(file, temporary));
  }

  putBytes(key: string, bytes: Buffer): Promise<void> {
    return this.storeWhole(key, (temporary) => fs.writeFile(temporary, bytes));
  }

  /** Writes a temporary file beside the target, then renames it into place: readers see all or nothing. */
  private async storeWhole(key: string, write: (temporary: string) => Promise<void>): Promise<void> {
    const target = path.join(this.dir, key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const temporary = `${target}.${process.pid}.tmp`;
    await write(temporary);
    await fs.rename(temporary, target);
  }

  async delete(key: string): Promise<void> {
    await fs.rm(path.join(this.dir, key), { force: true });
  }

  /** The folder can be written (made if missing, as put() would): a read-only volume, a file in its place, cannot. */
  async check(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    await fs.access(this.dir, fs.constants.W_OK);
  }

  async open(key: string): Promise<LogHandle | null> {
    try {
      return await fs.open(path.join(this.dir, key), 'r');
    } catch (error) {
      // (ENOTDIR: a file where its project's folder should be; the object is not there either)
      if (['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '')) return null;
      throw error;
    }
  }
}

/** The archive the configuration names: S3 when HUB_ARCHIVE_S3 is set, else the shared folder. */
export async function openArchive(config: { archiveDir: string; archiveS3: string | null; archiveS3PathStyle: boolean; archiveTimeoutMs?: number }): Promise<ObjectStore> {
  if (!config.archiveS3) return new DirectoryObjectStore(config.archiveDir);
  // Loaded only when asked for: the AWS SDK is large, and the embedded mode never needs it.
  const { S3ObjectStore } = await import('./s3ObjectStore.js');
  return S3ObjectStore.fromUrl(config.archiveS3, { forcePathStyle: config.archiveS3PathStyle }, config.archiveTimeoutMs);
}
