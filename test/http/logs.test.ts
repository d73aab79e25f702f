import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createProject, nodeStep, startHub, waitForRun, type TestHub } from '../helpers/hub.js';
import { setUp } from '../helpers/setup.js';

const LINES = 60_000;
const logs = suite<{ hub: TestHub; projectId: number; runId: number; file: string; all: string[] }>('logs over HTTP');

setUp(logs, async (context) => {
  context.hub = await startHub({
    env: { HUB_MAX_LINE_BYTES: '65536' }, // catch-up reads of 512 KiB: the stream has several batches
    pipelines: {
      count: { steps: [{ name: 'count', command: nodeStep(`for (let i = 1; i <= ${LINES}; i++) console.log('line ' + i + ' é'); process.stdout.write('no newline at the end');`) }], scopes: { all: 'count' } },
      evil: { steps: [{ name: 'e', command: nodeStep(`for (let i = 0; i < 50; i++) console.log('a'.repeat(40) + '!'); console.log('plain end');`) }], scopes: { all: 'e' } },
      bytes: { steps: [{ name: 'b', command: nodeStep(`process.stdout.write(Buffer.concat([Buffer.alloc(10, 0xff), Buffer.from('\\nneedle-one\\n'), Buffer.from([0xff, 0xff]), Buffer.from('\\nneedle-two\\n')]));`) }], scopes: { all: 'b' } },
      longLine: { steps: [{ name: 'l', command: nodeStep(`process.stdout.write('a'.repeat(1_000_000) + '\\n');`) }], scopes: { all: 'l' } },
      waiting: { steps: [{ name: 'w', command: nodeStep(`console.log('first'); process.stdout.write('partial'); setTimeout(() => console.log(' done'), 1500);`) }], scopes: { all: 'w' } },
    },
  });
  context.projectId = await createProject(context.hub, 'count');
  const { body } = await context.hub.api('POST', `/api/projects/${context.projectId}/runs`, { scope: 'all' });
  context.runId = body.id;
  const run = await waitForRun(context.hub, context.projectId, body.id, ['completed']);
  context.file = path.join(context.hub.dir, 'logs', run.log_path);
  const text = fs.readFileSync(context.file, 'utf8');
  context.all = text.slice(0, -1).split('\n');
});
logs.after(async ({ hub }) => hub.stop());

const base = (c: { projectId: number; runId: number }) => `/api/projects/${c.projectId}/runs/${c.runId}/logs`;

logs('tail=N gives the last N lines of a finished run, with offsets and complete', async (context) => {
  const { hub, all } = context;
  const { status, body } = await hub.api('GET', `${base(context)}?tail=3`);
  assert.is(status, 200);
  assert.equal(body.lines, all.slice(-3));
  assert.is(body.complete, true);
  assert.is(body.status, 'completed');
  assert.is(body.next, fs.statSync(context.file).size);
  const byDefault = await hub.api('GET', base(context));
  assert.is(byDefault.body.lines.length, 1000);
  assert.equal(byDefault.body.lines, all.slice(-1000));
  assert.ok(all.includes('no newline at the end[hub] run completed') || all.includes('no newline at the end'));
});

logs('offset=N pages through the whole log with next, at most 1 MiB a response', async (context) => {
  const { hub, all } = context;
  const collected: string[] = [];
  let offset = 0;
  for (let page = 0; page < 100; page++) {
    const { body } = await hub.api('GET', `${base(context)}?offset=${offset}`);
    assert.is(body.offset, offset);
    collected.push(...body.lines);
    offset = body.next;
    if (body.complete) break;
  }
  assert.equal(collected, all);
});

logs('Accept: text/plain gives the same lines as text', async (context) => {
  const { hub, all } = context;
  const { body, headers } = await hub.api('GET', `${base(context)}?tail=2`, undefined, { accept: 'text/plain' });
  assert.is(body, `${all.slice(-2).join('\n')}\n`);
  assert.is(headers.get('x-log-complete'), 'true');
});

logs('a running run gives its complete lines only; a missing log is 200 with none', async (context) => {
  const { hub } = context;
  const projectId = await createProject(hub, 'waiting');
  const { body: run } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const early = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs`);
  assert.is(early.status, 200);
  assert.is(early.body.complete, false);
  const file = path.join(hub.dir, 'logs', String(projectId), `${run.id}.log`);
  await waitForRun(hub, projectId, run.id, ['running']);
  for (let i = 0; i < 100 && !fs.readFileSync(file, 'utf8').includes('partial'); i++) await new Promise((r) => setTimeout(r, 20));
  const during = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs`);
  assert.equal(during.body.lines, ['[hub] step 1/1: w', 'first']);
  assert.is(during.body.complete, false);
  await waitForRun(hub, projectId, run.id, ['completed']);
  const after = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs?offset=${during.body.next}`);
  assert.equal(after.body.lines, ['partial done', '[hub] run completed']);
  assert.is(after.body.complete, true);
});

logs('Poll-Interval: -1 once a finished log is read to its end, 0 for an earlier part, 1000 ms while the run is active', async (context) => {
  const { hub } = context;
  const last = await hub.api('GET', `${base(context)}?tail=3`);
  assert.is(last.headers.get('poll-interval'), '-1');
  assert.is((await hub.api('GET', `${base(context)}?tail=3&before=100`)).headers.get('poll-interval'), '0', 'an earlier part is not the end: go on at once');
  assert.is((await fetch(`${hub.url}${base(context)}/raw`)).headers.get('poll-interval'), '-1');
  const projectId = await createProject(hub, 'waiting');
  const { body: run } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const during = await hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs`, undefined, { accept: 'text/plain' });
  assert.is(during.headers.get('poll-interval'), '1000');
  await waitForRun(hub, projectId, run.id, ['completed']);
});

logs('?download=1 answers the raw log as an attachment named <project>-run-<id>.log', async (context) => {
  const { hub } = context;
  const inline = await fetch(`${hub.url}${base(context)}/raw`);
  assert.match(inline.headers.get('content-disposition')!, /^inline/);
  await inline.arrayBuffer();
  const project = (await hub.api('GET', `/api/projects/${context.projectId}`)).body;
  const download = await fetch(`${hub.url}${base(context)}/raw?download=1`);
  const header = download.headers.get('content-disposition')!;
  const ascii = `${project.name}-run-${context.runId}.log`.replace(/[^A-Za-z0-9._-]/g, '_');
  assert.ok(header.startsWith(`attachment; filename="${ascii}"`), header);
  assert.ok(header.includes(`filename*=UTF-8''${encodeURIComponent(`${project.name}-run-${context.runId}.log`)}`), header);
  assert.ok(Buffer.from(await download.arrayBuffer()).equals(fs.readFileSync(context.file)));
});

logs('a download\'s filename* percent-encodes all but RFC 5987 attr-chars: \' ( ) * and non-ASCII too', async (context) => {
  const { hub } = context;
  const name = "it's (v2)* é naïve 日本 100%";
  const projectId = await createProject(hub, 'evil', name);
  const { body } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  await waitForRun(hub, projectId, body.id, ['completed']);
  const download = await fetch(`${hub.url}/api/projects/${projectId}/runs/${body.id}/logs/raw?download=1`);
  await download.arrayBuffer();
  const header = download.headers.get('content-disposition')!;
  const extended = /filename\*=UTF-8''(.*)$/.exec(header)?.[1];
  assert.ok(extended, header);
  // attr-char = ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~", and %XX
  assert.match(extended!, /^(?:[A-Za-z0-9!#$&+\-.^_`|~]|%[0-9A-F]{2})+$/, header);
  assert.is(decodeURIComponent(extended!), `${name}-run-${body.id}.log`);
  assert.ok(extended!.startsWith('it%27s%20%28v2%29%2A%20%C3%A9'), extended);
  assert.ok(header.startsWith(`attachment; filename="it_s__v2_____na_ve____100_-run-${body.id}.log"`), header);
});

logs('the raw file is served as text with Range support', async (context) => {
  const { hub } = context;
  const bytes = fs.readFileSync(context.file);
  const whole = await fetch(`${hub.url}${base(context)}/raw`);
  assert.is(whole.status, 200);
  assert.is(whole.headers.get('content-type'), 'text/plain; charset=utf-8');
  assert.ok(Buffer.from(await whole.arrayBuffer()).equals(bytes));
  const part = await fetch(`${hub.url}${base(context)}/raw`, { headers: { range: 'bytes=10-19' } });
  assert.is(part.status, 206);
  assert.is(part.headers.get('content-range'), `bytes 10-19/${bytes.length}`);
  assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(10, 20)));
  const suffix = await fetch(`${hub.url}${base(context)}/raw`, { headers: { range: 'bytes=-5' } });
  assert.ok(Buffer.from(await suffix.arrayBuffer()).equals(bytes.subarray(-5)));
  const past = await fetch(`${hub.url}${base(context)}/raw`, { headers: { range: `bytes=${bytes.length + 5}-` } });
  assert.is(past.status, 416);
  assert.is(past.headers.get('content-range'), `bytes */${bytes.length}`);
  const many = await fetch(`${hub.url}${base(context)}/raw`, { headers: { range: 'bytes=0-1,2-3,4-5,6-7,8-9,10-11' } });
  assert.is(many.status, 416);
  assert.is(((await many.json()) as { error: { code: string } }).error.code, 'too_many_ranges');
});

logs('SSE gives the same stream, with id = next, honouring Last-Event-ID, then event: complete', async (context) => {
  const { hub, all } = context;
  const read = (headers: Record<string, string>, query = '') =>
    new Promise<string>((resolve, reject) => {
      http.get(`${hub.url}${base(context)}?offset=0${query}`, { headers: { accept: 'text/event-stream', ...headers } }, (response) => {
        assert.is(response.headers['content-type'], 'text/event-stream; charset=utf-8');
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => resolve(text));
      }).on('error', reject);
    });
  const parse = (text: string) =>
    text.split('\n\n').filter(Boolean).map((block) => {
      const fields = Object.fromEntries(block.split('\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]));
      return { id: fields.id, event: fields.event, data: JSON.parse(fields.data) };
    });
  const events = parse(await read({}));
  const lines = events.filter((e) => e.event === 'lines').flatMap((e) => e.data.lines);
  assert.equal(lines, all);
  assert.is(events.at(-1)!.event, 'complete');
  const middle = events.filter((e) => e.event === 'lines')[0];
  const resumed = parse(await read({ 'last-event-id': middle.id }));
  const rest = resumed.filter((e) => e.event === 'lines').flatMap((e) => e.data.lines);
  const seen = events.filter((e) => e.event === 'lines').slice(0, 1).flatMap((e) => e.data.lines);
  assert.ok(rest.length > 0, 'the resumed stream has lines of its own');
  assert.equal([...seen, ...rest], all);
  // With timestamps, the same lines, each with the time the HTTP pages give it.
  const timed = parse(await read({}, '&timestamps=1')).filter((e) => e.event === 'lines');
  assert.equal(timed.flatMap((e) => e.data.lines), all);
  const times = timed.flatMap((e) => e.data.times);
  assert.is(times.length, all.length);
  assert.ok(times.every((time) => typeof time === 'number'), 'every line of a run with a times file has a time');
  const page = (await hub.api('GET', `${base(context)}?offset=0&timestamps=1`)).body;
  assert.equal(times.slice(0, page.times.length), page.times);
  assert.not.ok(events.some((e) => 'times' in e.data), 'not asked for: no times');
});

logs('search: the whole log in file order with exact offsets, paged by next_after; text, case and regex', async (context) => {
  const { hub } = context;
  const bytes = fs.readFileSync(context.file);
  const lineAt = (offset: number) => bytes.subarray(offset, bytes.indexOf(0x0a, offset) === -1 ? bytes.length : bytes.indexOf(0x0a, offset)).toString();
  const search = async (query: string) => (await hub.api('GET', `${base(context)}/search?${query}`)).body;
  const one = await search(`q=${encodeURIComponent('line 59999 é')}`);
  assert.equal(one.matches.map((m: { line: string }) => m.line), ['line 59999 é']);
  assert.is(lineAt(one.matches[0].offset), 'line 59999 é', 'the offset is where the line starts');
  assert.is(one.complete, true);
  assert.is((await search(`q=${encodeURIComponent('LINE 7 é')}`)).matches.length, 1, 'case-insensitive by default');
  assert.is((await search(`q=${encodeURIComponent('LINE 7 é')}&case=1`)).matches.length, 0);
  assert.equal((await search('q=newline%20at%20the')).matches.map((m: { line: string }) => m.line.startsWith('no newline at the end')), [true], 'the last line, without its newline');
  // Every line, 1000 at a time.
  let after = 0;
  const offsets: number[] = [];
  for (let page = 0; page < 100; page++) {
    const result = await search(`q=%C3%A9&limit=1000&after=${after}`);
    offsets.push(...result.matches.map((m: { offset: number }) => m.offset));
    after = result.next_after;
    if (result.complete) break;
    assert.is(result.stopped, 'limit');
  }
  assert.is(offsets.length, 60_000);
  assert.ok(offsets.every((offset, i) => i === 0 || offset > offsets[i - 1]), 'file order');
  assert.is(lineAt(offsets[12_345]), 'line 12346 é');
  const regex = await search(`regex=1&limit=1000&q=${encodeURIComponent('^line 4\\d{4} é$')}`);
  assert.is(regex.matches.length, 1000, JSON.stringify(regex).slice(0, 300));
  assert.is(regex.matches[0].line, 'line 40000 é');
  assert.is(regex.stopped, 'limit');
  const bad = await hub.api('GET', `${base(context)}/search?regex=1&q=(`);
  assert.is(bad.status, 400);
  assert.is(bad.body.error.field, 'q');
  assert.is((await hub.api('GET', `${base(context)}/search`)).status, 400, 'q is required');
});

logs('search: a regex that backtracks for ever is stopped at its deadline in its own thread; the server answers meanwhile', async (context) => {
  const { hub } = context;
  const projectId = await createProject(hub, 'evil');
  const { body: run } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  await waitForRun(hub, projectId, run.id, ['completed']);
  const started = Date.now();
  const searching = hub.api('GET', `/api/projects/${projectId}/runs/${run.id}/logs/search?regex=1&q=${encodeURIComponent('^(a+)+$')}`);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const health = await hub.api('GET', '/api/health');
  assert.is(health.status, 200, 'the event loop is free');
  assert.ok(Date.now() - started < 900, 'health answered before the regex deadline');
  const result = (await searching).body;
  assert.is(result.stopped, 'regex_timeout');
  assert.is(result.complete, false);
  assert.equal(result.matches, []);
});

logs('search: offsets are the file\'s bytes when a step prints bytes that are not UTF-8; paging one at a time finds every match', async (context) => {
  const { hub } = context;
  const projectId = await createProject(hub, 'bytes');
  const { body: run } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const done = await waitForRun(hub, projectId, run.id, ['completed']);
  const bytes = fs.readFileSync(path.join(hub.dir, 'logs', done.log_path));
  const expected = [bytes.indexOf('needle-one'), bytes.indexOf('needle-two')];
  const base = `/api/projects/${projectId}/runs/${run.id}/logs`;
  const all = (await hub.api('GET', `${base}/search?q=needle`)).body;
  assert.equal(all.matches.map((m: { offset: number }) => m.offset), expected, 'the offsets grep -b gives');
  const found: number[] = [];
  let after = 0;
  for (let page = 0; page < 10; page++) {
    const { body } = await hub.api('GET', `${base}/search?q=needle&limit=1&after=${after}`);
    found.push(...body.matches.map((m: { offset: number }) => m.offset));
    if (body.complete) break;
    after = body.next_after;
  }
  assert.equal(found, expected, 'needle-two is not lost');
  const page = (await hub.api('GET', `${base}?offset=${expected[0]}`)).body;
  assert.is(page.lines[0], 'needle-one', 'a match\'s offset opens its line');
});

logs('search: a 1 MB line of one letter, searched for that letter, answers at once and /api/health answers meanwhile', async (context) => {
  const { hub } = context;
  const projectId = await createProject(hub, 'longLine');
  const { body: run } = await hub.api('POST', `/api/projects/${projectId}/runs`, { scope: 'all' });
  const done = await waitForRun(hub, projectId, run.id, ['completed']);
  const longLineAt = fs.readFileSync(path.join(hub.dir, 'logs', done.log_path)).indexOf('a'.repeat(100));
  const base = `/api/projects/${projectId}/runs/${run.id}/logs`;
  const started = Date.now();
  const searches = Promise.all(['q=a&limit=2', 'q=A&limit=2', 'regex=1&q=a*&limit=2', 'regex=1&q=x*&limit=1000', 'q=qqqq'].map((query) => hub.api('GET', `${base}/search?${query}`)));
  const healthTimes: number[] = [];
  let finished = false;
  const finish = () => (finished = true); // a failed search is seen below, where `searches` is awaited
  searches.then(finish, finish);
  while (!finished && Date.now() - started < 60_000) {
    const asked = Date.now();
    assert.is((await hub.api('GET', '/api/health')).status, 200);
    healthTimes.push(Date.now() - asked);
  }
  const answers = await searches;
  assert.ok(Date.now() - started < 5000, `the searches took ${Date.now() - started} ms`);
  assert.ok(Math.max(...healthTimes) < 250, `health took up to ${Math.max(...healthTimes)} ms`);
  assert.is(answers[0].body.matches[0].offset, longLineAt);
  assert.is(answers[0].body.matches[0].line.length, 2000);
  assert.is(answers[4].body.complete, true);
  assert.equal(answers[4].body.matches, []);
});

logs('bad tail and offset values are 400; an unknown run is 404', async (context) => {
  const { hub } = context;
  for (const query of ['tail=-1', 'tail=abc', 'tail=10001', 'offset=1.5', 'offset=-3', 'tail=1&offset=0', 'offset=99999999999']) {
    const { status, body } = await hub.api('GET', `${base(context)}?${query}`);
    assert.is(status, 400, query);
    assert.ok(['invalid_query', 'invalid_offset'].includes(body.error.code), query);
  }
  assert.is((await hub.api('GET', `/api/projects/${context.projectId}/runs/999999/logs`)).status, 404);
  assert.is((await hub.api('GET', `/api/projects/${context.projectId}/runs/999999/logs/raw`)).status, 404);
});

logs.run();
