import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runnerOutcome } from '../../server/runs/runnerOutcome.js';
import type { WatchedRunner } from '../../server/runs/runnerWatch.js';
import type { RunRow } from '../../server/store/runs.js';

const run = { id: 7, project_id: 1, status: 'running', current_step: 'b', progress_current: 1, progress_total: 3 } as RunRow;
const runner = (extra: Partial<WatchedRunner> = {}): WatchedRunner => ({ runId: 7, projectId: 1, pid: 1, token: 't', stateFile: '/x', ...extra });
const unreadable = { kind: 'unreadable', reason: 'the file is not valid JSON' } as const;

test('a damaged state file and the runner\'s exit code 0: completed, all steps done', () => {
  const { changes, marker } = runnerOutcome(runner({ exited: { code: 0, signal: null } }), unreadable, run);
  assert.is(changes.status, 'completed');
  assert.is(changes.progress_current, 3);
  assert.is(marker, null, 'the runner wrote its own last line');
});

test('a damaged state file and exit codes 3 and 4: failed and cancelled, saying the step\'s exit code is unknown', () => {
  const failed = runnerOutcome(runner({ exited: { code: 3, signal: null } }), unreadable, run).changes;
  assert.is(failed.status, 'failed');
  assert.match(failed.error_message!, 'state file was unreadable (the file is not valid JSON)');
  assert.is(runnerOutcome(runner({ exited: { code: 4, signal: null } }), unreadable, run).changes.status, 'cancelled');
});

test('a damaged state file and a runner that crashed or is gone: failed, the outcome unknown', () => {
  const crashed = runnerOutcome(runner({ exited: { code: 70, signal: null } }), unreadable, run);
  assert.is(crashed.changes.status, 'failed');
  assert.is(crashed.changes.error_message, "The runner exited with code 70 and its state file is unreadable (the file is not valid JSON): the run's outcome is unknown");
  assert.ok(crashed.marker);
  assert.match(runnerOutcome(runner(), unreadable, run).changes.error_message!, 'The runner disappeared and its state file is unreadable');
  assert.is(runnerOutcome(runner({ exited: { code: null, signal: 'SIGKILL' } }), unreadable, run).changes.signal, 'SIGKILL');
});

test('a runner that exits 5 (its disk was full, its final state unwritten): failed, "no space left on device", at its last step', () => {
  const running = { kind: 'state', state: { status: 'running', current_step: 'c', progress_current: 2, progress_total: 3, exit_code: null, signal: null, error_message: null, finished_at: null } as never } as const;
  const { changes, marker } = runnerOutcome(runner({ exited: { code: 5, signal: null } }), running, run);
  assert.is(changes.status, 'failed');
  assert.is(changes.error_message, 'The disk of the run\'s log is full (no space left on device): the runner could not write the log or its state during step "c"');
  assert.is(changes.progress_current, 2);
  assert.ok(marker, 'the server tries to write the last line itself');
  assert.is(runnerOutcome(runner({ exited: { code: 5, signal: null } }), unreadable, run).changes.error_message, 'The disk of the run\'s log is full (no space left on device): the runner could not write the log or its state during step "b"');
});

test('a final state wins over everything else', () => {
  const state = { status: 'failed', current_step: 'c', progress_current: 2, progress_total: 3, exit_code: 9, signal: null, error_message: 'x', finished_at: 'then' };
  const { changes } = runnerOutcome(runner({ exited: { code: 0, signal: null } }), { kind: 'state', state: state as never }, run);
  assert.equal([changes.status, changes.exit_code, changes.finished_at], ['failed', 9, 'then']);
});

test.run();
