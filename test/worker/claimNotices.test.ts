import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseWorkNotice } from '../../server/store/postgres/notify.js';
import { claimWaitMs, ClaimNotices } from '../../server/worker/claimNotices.js';
import { waitFor } from '../helpers/hub.js';

const JITTER_MS = 20;

function setUp(free = true) {
  let claims = 0;
  const notices = new ClaimNotices({ claim: () => claims++, hasFreeSlot: () => free, jitterMs: JITTER_MS, random: () => 0.5 });
  const hear = (payload: string) => notices.hear(parseWorkNotice(payload)!);
  return { notices, hear, claims: () => claims };
}

/** Long enough for any turn scheduled so far to have come (the wait is at most JITTER_MS). */
const pastTurn = () => new Promise((resolve) => setTimeout(resolve, JITTER_MS * 3));

test('work notices parse: a claim with or without its run, a claimed run, a cancel; anything else is nothing', () => {
  assert.equal(parseWorkNotice('claim'), { kind: 'claim', runId: null });
  assert.equal(parseWorkNotice('claim:42'), { kind: 'claim', runId: 42 });
  assert.equal(parseWorkNotice('claimed:42'), { kind: 'claimed', runId: 42 });
  assert.equal(parseWorkNotice('cancel:w-1'), { kind: 'cancel', workerId: 'w-1' });
  assert.is(parseWorkNotice('claim:x'), null);
  assert.is(parseWorkNotice('claimed'), null);
  assert.is(parseWorkNotice('nonsense'), null);
});

test('the wait before a claim is within the window, skewed late', () => {
  assert.is(claimWaitMs(100, () => 0), 0);
  assert.is(claimWaitMs(100, () => 0.25), 50);
  assert.ok(claimWaitMs(100, () => 0.999_999) < 100);
});

test('a claim notice claims after the wait, once for every run announced meanwhile', async () => {
  const { notices, hear, claims } = setUp();
  try {
    hear('claim:1');
    hear('claim:2');
    assert.is(claims(), 0, 'not at once');
    await waitFor(() => claims() === 1, 'the claim after the wait', 1000, 5);
    await pastTurn();
    assert.is(claims(), 1);
  } finally {
    notices.close();
  }
});

test('a run heard claimed before the turn is let go; one of two still waiting is claimed', async () => {
  const { notices, hear, claims } = setUp();
  try {
    hear('claim:1');
    hear('claimed:1');
    await pastTurn();
    assert.is(claims(), 0, 'its only run was claimed by another');

    hear('claim:2');
    hear('claim:3');
    hear('claimed:2');
    await waitFor(() => claims() === 1, 'the claim for run 3', 1000, 5);
  } finally {
    notices.close();
  }
});

test('a claim naming no run (a database before migration 011) claims after the wait whatever was claimed', async () => {
  const { notices, hear, claims } = setUp();
  try {
    hear('claim');
    hear('claimed:7');
    await waitFor(() => claims() === 1, 'the claim after the wait', 1000, 5);
  } finally {
    notices.close();
  }
});

test('a run announced after a turn gets a turn of its own', async () => {
  const { notices, hear, claims } = setUp();
  try {
    hear('claim:1');
    await waitFor(() => claims() === 1, 'the first claim', 1000, 5);
    hear('claim:2');
    await waitFor(() => claims() === 2, 'the second claim', 1000, 5);
  } finally {
    notices.close();
  }
});

test('a worker with no free slot takes no part; a closed one claims nothing more', async () => {
  const full = setUp(false);
  const closed = setUp();
  try {
    full.hear('claim:1');
    closed.hear('claim:1');
    closed.notices.close();
    closed.hear('claim:2');
    await pastTurn();
    assert.is(full.claims(), 0);
    assert.is(closed.claims(), 0);
  } finally {
    full.notices.close();
    closed.notices.close();
  }
});

test.run();
