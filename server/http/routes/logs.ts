import { Readable } from 'node:stream';
import Router from '@koa/router';
import type Koa from 'koa';
import type { LogHandle } from '../../logs/logSource.js';
import { DEFAULT_TAIL, readLogPage, type StartAt } from '../../logs/pageReader.js';
import { logPageQuery, rawLogQuery, searchQuery } from '../../schemas/http.js';
import { searchLog } from '../../logs/logSearch.js';
import { badRequest } from '../../errors.js';
import { parseWith } from '../../schemas/parse.js';
import { isTerminal, type RunRow } from '../../store/runs.js';
import { parseRange } from '../byteRange.js';
import type { AppServices } from '../context.js';
import { PollInterval } from '../pollInterval.js';
import { SseSink } from '../sseSink.js';
import { drainingError } from '../drain.js';
import { parseQueryInteger } from '../validate.js';
import { loadRun } from './runs.js';

/** offset, or tail (the default), and `before` with tail. */
function readPageQuery(ctx: Koa.Context): { startAt: StartAt; before?: number; timestamps: boolean } {
  const query = parseWith(logPageQuery, ctx.query, 'query');
  return { startAt: query.offset !== undefined ? { offset: query.offset } : { tail: query.tail ?? DEFAULT_TAIL }, before: query.before, timestamps: query.timestamps === '1' };
}

/** A line as `docker logs -t` shows it: its RFC 3339 time (or "-" when unknown), a space, the line. */
const stamped = (line: string, time: number | null | undefined) => `${time == null ? '-' : new Date(time).toISOString()} ${line}`;

/** The bytes of [start, end) from any log source, in 64 KiB reads; the handle is closed however it ends. */
async function* readRange(handle: LogHandle, start: number, end: number): AsyncGenerator<Buffer> {
  try {
    for (let position = start; position < end; ) {
      const buffer = Buffer.allocUnsafe(Math.min(RAW_CHUNK, end - position));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) return;
      position += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

const RAW_CHUNK = 64 * 1024;
/** A search answers within about this long, saying where it stopped. */
const SEARCH_BUDGET_MS = 3000;
/** The longest a user's regex may run over one 1 MiB chunk. */
const REGEX_DEADLINE_MS = 1000;

/**
 * `inline` for the browser's own view; `attachment` with `?download=1` as `<project>-run-<id>.log`:
 * the ASCII name keeps letters, digits, "." "_" "-" (the rest become "_"), `filename*` has the exact name.
 */
function contentDisposition(download: boolean, project: { name: string } | undefined, runId: number): string {
  if (!download) return `inline; filename="run-${runId}.log"`;
  const name = `${project?.name ?? 'project'}-run-${runId}.log`;
  const ascii = name.replace(/[^A-Za-z0-9._-]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeRfc5987(name)}`;
}

/** RFC 5987 `value-chars`: encodeURIComponent leaves ' ( ) * as they are, which attr-char does not allow (parsers then fall back to the ASCII name). */
const encodeRfc5987 = (value: string) =>
  encodeURIComponent(value).replace(/['()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);

export function logRoutes(services: AppServices): Router {
  const router = new Router({ prefix: '/api/projects/:projectId/runs/:runId/logs' });
  const { config } = services;
  const pollInterval = new PollInterval();

  router.get('/', async (ctx) => {
    const run = await loadRun(services, ctx.params);
    // `before` (with tail): the lines that end before that offset, for loading earlier parts on demand.
    const { startAt, before, timestamps } = readPageQuery(ctx);
    if (ctx.accepts('application/json', 'text/plain', 'text/event-stream') === 'text/event-stream') return streamEvents(ctx, run);
    const source = services.logSourceOf(run);
    const result = await readLogPage(source, { maxLineBytes: config.maxLineBytes, finished: isTerminal(run.status), recordedSize: run.log_size, timestamps }, startAt, before);
    // An earlier part (`before`) is never the end of the log: pollers of it are not told to stop.
    ctx.set('Poll-Interval', pollInterval.header({ finished: isTerminal(run.status), complete: result.complete && before === undefined }));
    if (ctx.accepts('application/json', 'text/plain') === 'text/plain') {
      ctx.set({ 'X-Log-Offset': String(result.offset), 'X-Log-Next': String(result.next), 'X-Log-Complete': String(result.complete) });
      ctx.type = 'text/plain; charset=utf-8';
      const lines = result.times ? result.lines.map((line, index) => stamped(line, result.times![index])) : result.lines;
      ctx.body = lines.length > 0 ? `${lines.join('\n')}\n` : '';
      return;
    }
    ctx.body = { run_id: run.id, status: run.status, ...result };
  });

  /** The WebSocket stream as Server-Sent Events, resuming from Last-Event-ID when the browser reconnects. */
  async function streamEvents(ctx: Koa.Context, run: RunRow) {
    if (services.drain.draining) throw drainingError();
    const lastEventId = ctx.get('last-event-id');
    const query = readPageQuery(ctx);
    const startAt: StartAt = lastEventId !== '' ? { offset: parseQueryInteger(lastEventId, 'Last-Event-ID', 0, Number.MAX_SAFE_INTEGER) } : query.startAt;
    const sink = new SseSink(ctx.res, config.wsHighWaterBytes, services.metrics.countSent);
    await services.hub.subscribeRun(sink, run.id, startAt, {
      projectId: run.project_id,
      timestamps: query.timestamps,
      onStart: (offset) => {
        ctx.respond = false;
        ctx.res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no', Connection: 'keep-alive' });
        sink.send('subscribed', JSON.stringify({ type: 'subscribed', run_id: run.id, offset }), offset);
      },
    });
    const keepAlive = setInterval(() => sink.comment('keep-alive'), 15_000);
    const untrack = services.drain.track(sink);
    ctx.res.once('close', () => {
      untrack();
      clearInterval(keepAlive);
      services.hub.dropSink(sink);
    });
  }

  // The whole log, not the loaded part: in bounded memory, within a time budget, a regex in a thread with a deadline.
  router.get('/search', async (ctx) => {
    const run = await loadRun(services, ctx.params);
    const query = parseWith(searchQuery, ctx.query, 'query');
    if (query.regex === '1') {
      try {
        new RegExp(query.q, 'gm');
      } catch (error) {
        throw badRequest('invalid_query', `Expected \`q\` to be a regular expression: ${(error as Error).message}`, { field: 'q' });
      }
    }
    ctx.body = await searchLog(services.logSourceOf(run), {
      text: query.q,
      regex: query.regex === '1',
      caseSensitive: query.case === '1',
      after: query.after ?? 0,
      limit: Math.max(1, query.limit ?? 100),
      budgetMs: SEARCH_BUDGET_MS,
      regexDeadlineMs: REGEX_DEADLINE_MS,
    }, isTerminal(run.status));
  });

  router.get('/raw', async (ctx) => {
    const run = await loadRun(services, ctx.params);
    const { download } = parseWith(rawLogQuery, ctx.query, 'query');
    // The project's name only for a download's file name (a plain read asks the store nothing more).
    const wanted = download === '1' || download === 'true';
    const disposition = contentDisposition(wanted, wanted ? await services.projects.get(run.project_id) : undefined, run.id);
    const handle = await services.logSourceOf(run).open();
    const size = handle ? (await handle.stat()).size : 0; // not written yet: an empty log
    ctx.type = 'text/plain; charset=utf-8';
    ctx.set('Accept-Ranges', 'bytes');
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Poll-Interval', pollInterval.header({ finished: isTerminal(run.status), complete: true }));
    ctx.set('Content-Disposition', disposition);
    let range;
    try {
      range = parseRange(ctx.get('range') || undefined, size);
    } catch (error) {
      await handle?.close();
      throw error;
    }
    if (!handle || size === 0) {
      await handle?.close();
      ctx.body = '';
      return;
    }
    const { start, end } = range ?? { start: 0, end: size - 1 };
    if (range) {
      ctx.status = 206;
      ctx.set('Content-Range', `bytes ${start}-${end}/${size}`);
    }
    ctx.length = end - start + 1;
    ctx.body = Readable.from(readRange(handle, start, end + 1));
  });
  return router;
}
