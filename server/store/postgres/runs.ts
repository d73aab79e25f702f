import type pg from 'pg';
import { WRITABLE_RUN_COLUMNS, countsOf, isTerminal, type NewRun, type RunChanges, type RunFence, type RunRow, type RunStatus, type RunStore } from '../runs.js';

const UNIQUE_VIOLATION = '23505';
/** Below this many rows (by the planner's estimate; none before the first ANALYZE) runs are counted exactly. */
const EXACT_COUNT_BELOW = 100_000;

/** `SET a = $2, b = $3` from the known columns of a change; values follow `first` placeholders. */
function assignments(changes: RunChanges, first: number): { sql: string; values: unknown[] } {
  const keys = Object.keys(changes).filter((key) => WRITABLE_RUN_COLUMNS.has(key));
  return { sql: keys.map((key, index) => `${key} = $${first + index}`).join(', '), values: keys.map((key) => (changes as Record<string, unknown>)[key]) };
}

/**
 * The condition a fence adds, its values from placeholder `first`, and what it sets: a worker's write
 * needs its own unexpired lease; a hub's giving up needs that lease expired (or none: a run claimed
 * before leases existed, found lost by its worker's heartbeat), and ends it.
 */
function fenceClause(fence: RunFence | undefined, first: number): { where: string; set: string; values: unknown[] } {
  if (!fence) return { where: '', set: '', values: [] };
  const held = `worker_id = $${first} AND lease_epoch = $${first + 1}`;
  return fence.expired
    ? { where: ` AND ${held} AND (lease_expires_at < now() OR lease_expires_at IS NULL)`, set: ', lease_epoch = lease_epoch + 1, lease_expires_at = NULL', values: [fence.workerId, fence.epoch] }
    : { where: ` AND ${held} AND lease_expires_at > now()`, set: '', values: [fence.workerId, fence.epoch] };
}

/** Runs on PostgreSQL: any number of hubs and workers share it; the database keeps one running run per project. */
export class PostgresRunStore implements RunStore {
  constructor(private readonly pool: pg.Pool) {}

  async get(id: number): Promise<RunRow | undefined> {
    return (await this.pool.query<RunRow>('SELECT * FROM runs WHERE id = $1', [id])).rows[0];
  }

  async listForProject(projectId: number, limit: number, before?: number): Promise<RunRow[]> {
    return (await this.pool.query<RunRow>('SELECT * FROM runs WHERE project_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3', [projectId, before ?? Number.MAX_SAFE_INTEGER, limit])).rows;
  }

  async ownedOf(projectId: number, runIds: readonly number[]): Promise<Set<number>> {
    if (runIds.length === 0) return new Set();
    const { rows } = await this.pool.query<{ id: number }>('SELECT id FROM runs WHERE project_id = $1 AND id = ANY($2::bigint[])', [projectId, runIds]);
    return new Set(rows.map((row) => row.id));
  }

  async listActive(): Promise<RunRow[]> {
    return (await this.pool.query<RunRow>("SELECT * FROM runs WHERE status IN ('pending', 'running') ORDER BY id")).rows;
  }

  async listChangedSince(since: string): Promise<RunRow[]> {
    return (await this.pool.query<RunRow>('SELECT * FROM runs WHERE started_at >= $1 OR finished_at >= $1 ORDER BY id', [since])).rows;
  }

  async listActiveForProject(projectId: number): Promise<RunRow[]> {
    return (await this.pool.query<RunRow>("SELECT * FROM runs WHERE project_id = $1 AND status IN ('pending', 'running') ORDER BY id", [projectId])).rows;
  }

  /**
   * Pending and running exactly, from their partial index (few rows); finished ones, once the table
   * is large, from the planner's statistics (row count × each status's share, as ANALYZE, run by
   * autovacuum, last saw them): counting a million rows per scrape is what /metrics must not do.
   */
  async countByStatus(): Promise<Record<RunStatus, number>> {
    const [active, estimate] = await Promise.all([
      this.pool.query<{ status: string; count: string }>("SELECT status, COUNT(*) AS count FROM runs WHERE status IN ('pending', 'running') GROUP BY status"),
      this.pool.query<{ rows: number; statuses: string | null; shares: number[] | null }>(
        `SELECT c.reltuples::float8 AS rows, s.most_common_vals::text AS statuses, s.most_common_freqs AS shares
         FROM pg_class c LEFT JOIN pg_stats s ON s.schemaname = current_schema() AND s.tablename = 'runs' AND s.attname = 'status'
         WHERE c.oid = 'runs'::regclass`,
      ),
    ]);
    const { rows, statuses, shares } = estimate.rows[0];
    if (rows < EXACT_COUNT_BELOW || statuses === null || shares === null) {
      return countsOf((await this.pool.query<{ status: string; count: string }>('SELECT status, COUNT(*) AS count FROM runs GROUP BY status')).rows);
    }
    const names = statuses.replace(/^\{|\}$/g, '').split(',');
    const finished = names.flatMap((status, index) => (isTerminal(status as RunStatus) ? [{ status, count: Math.round(rows * shares[index]) }] : []));
    return countsOf([...finished, ...active.rows]);
  }

  async insert(run: NewRun, client: pg.Pool | pg.PoolClient = this.pool): Promise<RunRow> {
    const { rows } = await client.query<RunRow>(
      'INSERT INTO runs (project_id, scope, status, triggered_by, progress_total, plan, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *',
      [run.project_id, run.scope, run.status, run.triggered_by, run.progress_total, run.plan, new Date().toISOString()],
    );
    return rows[0];
  }

  /**
   * The project's row is locked first, so concurrent starts of one project (from any hub) take turns;
   * each looks for active runs in its own statement, after the previous one committed.
   */
  async insertIfIdle(run: NewRun): Promise<RunRow | null> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT 1 FROM projects WHERE id = $1 FOR UPDATE', [run.project_id]);
      const { rows } = await client.query("SELECT 1 FROM runs WHERE project_id = $1 AND status IN ('pending', 'running') LIMIT 1", [run.project_id]);
      const inserted = rows.length === 0 ? await this.insert(run, client) : null;
      await client.query('COMMIT');
      return inserted;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async claim(id: number, changes: RunChanges): Promise<RunRow | null> {
    try {
      return await this.updateIf(id, { ...changes, status: 'running' }, "status = 'pending'");
    } catch (error) {
      // Another run of the project is running: the index refuses a second one.
      if ((error as { code?: string }).code === UNIQUE_VIOLATION) return null;
      throw error;
    }
  }

  settle(id: number, changes: RunChanges, fence?: RunFence): Promise<RunRow | null> {
    return this.updateIf(id, changes, "status IN ('pending', 'running')", fence);
  }

  update(id: number, changes: RunChanges): Promise<RunRow>;
  update(id: number, changes: RunChanges, fence: RunFence | undefined): Promise<RunRow | null>;
  async update(id: number, changes: RunChanges, fence?: RunFence): Promise<RunRow | null> {
    if (fence) return this.updateIf(id, changes, "status = 'running'", fence);
    const { sql, values } = assignments(changes, 2);
    if (sql === '') return (await this.get(id))!;
    return (await this.pool.query<RunRow>(`UPDATE runs SET ${sql} WHERE id = $1 RETURNING *`, [id, ...values])).rows[0];
  }

  async delete(id: number): Promise<void> {
    await this.pool.query('DELETE FROM runs WHERE id = $1', [id]);
  }

  private async updateIf(id: number, changes: RunChanges, condition: string, fence?: RunFence): Promise<RunRow | null> {
    const { sql, values } = assignments(changes, 2);
    const fenced = fenceClause(fence, 2 + values.length);
    // Under a fence even an empty change is a statement: whether the lease still holds.
    const set = sql === '' ? 'id = id' : sql;
    const { rows } = await this.pool.query<RunRow>(`UPDATE runs SET ${set}${fenced.set} WHERE id = $1 AND ${condition}${fenced.where} RETURNING *`, [id, ...values, ...fenced.values]);
    return rows[0] ?? null;
  }
}
