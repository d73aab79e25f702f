import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_DEPTH, SectionParser, type SectionEvent } from '../../server/sections/markers.js';
import type { Section } from '../../server/wire.js';

/** The sections of a whole log fed in pieces cut at `cuts` (byte positions), final states by id. */
function sectionsOf(log: string | Buffer, cuts: number[] = []): { sections: Section[]; events: SectionEvent[] } {
  const bytes = Buffer.isBuffer(log) ? log : Buffer.from(log);
  const parser = new SectionParser();
  const events: SectionEvent[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    events.push(...parser.push(bytes.subarray(from, cut)));
    from = cut;
  }
  events.push(...parser.end());
  const byId = new Map<number, Section>();
  for (const event of events) byId.set(event.section.id, event.section);
  return { sections: [...byId.values()].sort((a, b) => a.id - b.id), events };
}

const pick = (section: Section) => ({ name: section.name, dialect: section.dialect, parent: section.parent, depth: section.depth, start: section.start, end: section.end, collapsed: section.collapsed });

test('GitHub groups: name, byte range from the marker line to the end of ::endgroup::, open', () => {
  const log = 'a\n::group::Build it\nb\n::endgroup::\nc\n';
  const [group] = sectionsOf(log).sections;
  assert.equal(pick(group), { name: 'Build it', dialect: 'github', parent: null, depth: 0, start: 2, end: log.indexOf('c\n'), collapsed: false });
  assert.is(group.header_end, log.indexOf('b\n'));
});

test('GitLab sections: the title after the escape codes, collapsed=true, ended by their name, the marker time', () => {
  const start = '\x1b[0Ksection_start:1700000000:deps[collapsed=true]\r\x1b[0KInstall deps\n';
  const end = '\x1b[0Ksection_end:1700000012:deps\r\x1b[0K\n';
  const log = `x\n${start}npm ci\n${end}y\n`;
  const { sections, events } = sectionsOf(log);
  assert.equal(pick(sections[0]), { name: 'Install deps', dialect: 'gitlab', parent: null, depth: 0, start: 2, end: log.indexOf('y\n'), collapsed: true });
  assert.is(sections[0].key, 'deps');
  assert.equal(events.map((event) => event.markerTime), [1700000000000, 1700000012000]);
  const open = sectionsOf('\x1b[0Ksection_start:1700000000:plain\r\x1b[0K\nz\n').sections[0];
  assert.is(open.name, 'plain', 'no title: its name');
  assert.is(open.collapsed, false);
});

test('Buildkite headers are flat: each closes the previous; --- collapsed, +++ open, ~~~ muted, ^^^ +++ opens the previous', () => {
  const log = '--- one\na\n+++ two\nb\n~~~ three\nc\n^^^ +++\nd\n';
  const { sections, events } = sectionsOf(log);
  assert.equal(sections.map(pick), [
    { name: 'one', dialect: 'buildkite', parent: null, depth: 0, start: 0, end: log.indexOf('+++'), collapsed: true },
    { name: 'two', dialect: 'buildkite', parent: null, depth: 0, start: log.indexOf('+++'), end: log.indexOf('~~~'), collapsed: false },
    { name: 'three', dialect: 'buildkite', parent: null, depth: 0, start: log.indexOf('~~~'), end: log.length, collapsed: false },
  ]);
  assert.equal(sections.map((section) => section.muted), [false, false, true]);
  assert.ok(events.some((event) => event.kind === 'change' && event.section.name === 'three'), 'unfolding is an event');
  assert.is(sectionsOf('--- x\n---\n- - -\n').sections.length, 1, 'a bare --- (YAML, a rule) is no header');
});

test('sections nest three deep across dialects; an end marker closes what is open inside its section', () => {
  const log = [
    '::group::outer',
    '\x1b[0Ksection_start:1:middle\r\x1b[0KMiddle',
    '::group::inner',
    '--- bk',
    'deep',
    '::endgroup::', // closes bk (at its start), then inner
    '\x1b[0Ksection_end:2:middle\r\x1b[0K',
    '::endgroup::',
    'after',
    '',
  ].join('\n');
  const { sections } = sectionsOf(log);
  assert.equal(sections.map((section) => [section.name, section.parent, section.depth]), [['outer', null, 0], ['Middle', 1, 1], ['inner', 2, 2], ['bk', 3, 3]]);
  const [outer, middle, inner, bk] = sections;
  assert.is(bk.end, log.indexOf('::endgroup::'));
  assert.is(inner.end, log.indexOf('::endgroup::') + '::endgroup::\n'.length);
  assert.is(middle.end, log.indexOf('::endgroup::', inner.end!));
  assert.is(outer.end, log.indexOf('after'));
});

test('a section left open closes where its step ends (the next step header) or where the log ends', () => {
  const log = '[hub] step 1/2: build\n::group::never closed\nx\n[hub] step 2/2: test\n--- open at the end\ny';
  const { sections } = sectionsOf(log);
  assert.equal(sections.map((section) => [section.name, section.step, section.end]), [
    ['never closed', 'build', log.indexOf('[hub] step 2/2')],
    ['open at the end', 'test', log.length],
  ]);
});

test('markers split across writes at every byte give the same sections as one write', () => {
  const log = Buffer.from('[hub] step 1/1: s\n::group::é grouped\r\n\x1b[0Ksection_start:170:k[collapsed=true]\r\x1b[0KKé\nz\n\x1b[0Ksection_end:171:k\r\x1b[0K\n::endgroup::\n+++ b\n^^^ +++\n');
  const whole = sectionsOf(log).sections;
  assert.is(whole.length, 3);
  assert.is(whole[0].name, 'é grouped', 'a \\r\\n line loses its \\r');
  for (let cut = 1; cut < log.length; cut++) assert.equal(sectionsOf(log, [cut]).sections, whole, `cut at ${cut}`);
  const bytes = Array.from({ length: log.length - 1 }, (_, index) => index + 1);
  assert.equal(sectionsOf(log, bytes).sections, whole, 'a byte at a time');
});

test('unmatched end markers are ignored; nesting deeper than MAX_DEPTH closes the innermost first; long lines are no markers', () => {
  assert.is(sectionsOf('::endgroup::\n\x1b[0Ksection_end:1:none\r\x1b[0K\n').sections.length, 0);
  const { sections } = sectionsOf('::group::g\n'.repeat(MAX_DEPTH + 5));
  assert.is(sections.length, MAX_DEPTH + 5);
  assert.ok(Math.max(...sections.map((section) => section.depth)) < MAX_DEPTH);
  assert.is(sectionsOf(`::group::${'n'.repeat(5000)}\n`).sections.length, 0);
});

test.run();
