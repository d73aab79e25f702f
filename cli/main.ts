#!/usr/bin/env node
/**
 * `run-hub`: start, follow and cancel runs of a hub from a terminal or a script.
 * The thin entry: parses arguments, calls one command, turns its outcome into an exit code.
 */
import { parseArgs } from 'node:util';
import { cancelRun, listProjects, showLogs, showStatus, startRun, type Io } from './commands.js';
import { CliError, HubClient } from './hubClient.js';

const USAGE = `Usage: run-hub <command> [options]

Commands:
  projects                         list projects and their active runs
  status [PROJECT]                 latest run of every project, or a project's recent runs
  run PROJECT [--scope S | --from-step STEP] [--queue] [--follow] [--cancel-on-interrupt]
                                   start a run (the whole pipeline by default); with --follow,
                                   write its log to stdout and exit with its outcome
  logs RUN [-f] [-t] [--tail N] [--offset N]
                                   the run's log, byte for byte; -f follows it to the end;
                                   -t puts each line after the time it was written
  cancel RUN                       cancel a pending or running run

PROJECT is an id or a name; RUN is a run id.

Options:
  --url URL        the hub (default: $HUB_URL, else http://127.0.0.1:8080)
  --token TOKEN    the hub's token (default: $HUB_TOKEN)
  --json           machine-readable output
  -h, --help       this text

Exit codes: 0 ok (a followed run completed); a failed run's step exit code, or 128 + its signal;
130 cancelled or detached (Ctrl-C); 1 an error; 2 bad usage.
`;

const EXIT_ERROR = 1;
const EXIT_USAGE = 2;

class UsageError extends Error {}

function readCount(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new UsageError(`--${name} expects a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

function readRunId(value: string | undefined): number {
  const id = readCount(value, 'run');
  if (id === undefined || id < 1) throw new UsageError(`expected a run id, got ${value === undefined ? 'nothing' : JSON.stringify(value)}`);
  return id;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      follow: { type: 'boolean', short: 'f', default: false },
      timestamps: { type: 'boolean', short: 't', default: false },
      tail: { type: 'string' },
      offset: { type: 'string' },
      scope: { type: 'string' },
      'from-step': { type: 'string' },
      queue: { type: 'boolean', default: false },
      'cancel-on-interrupt': { type: 'boolean', default: false },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined && !values.help ? EXIT_USAGE : 0;
  }
  const client = new HubClient(values.url ?? process.env.HUB_URL ?? 'http://127.0.0.1:8080', values.token ?? process.env.HUB_TOKEN);
  const io: Io = {
    stdout: process.stdout,
    status: (line) => process.stderr.write(`${line}\n`),
    interactive: Boolean(process.stderr.isTTY),
    json: values.json,
  };
  const expectArgs = (count: number, what: string) => {
    if (rest.length !== count) throw new UsageError(`${command} expects ${what}`);
  };
  switch (command) {
    case 'projects':
      expectArgs(0, 'no arguments');
      return listProjects(client, io);
    case 'status':
      if (rest.length > 1) throw new UsageError('status expects at most one PROJECT');
      return showStatus(client, io, rest[0]);
    case 'run':
      expectArgs(1, 'one PROJECT');
      if (values.scope !== undefined && values['from-step'] !== undefined) throw new UsageError('give --scope or --from-step, not both');
      return startRun(client, io, rest[0], { scope: values.scope, fromStep: values['from-step'], queue: values.queue, follow: values.follow, cancelOnInterrupt: values['cancel-on-interrupt'] });
    case 'logs':
      expectArgs(1, 'one RUN id');
      if (values.tail !== undefined && values.offset !== undefined) throw new UsageError('give --tail or --offset, not both');
      return showLogs(client, io, readRunId(rest[0]), { follow: values.follow, timestamps: values.timestamps, tail: readCount(values.tail, 'tail'), offset: readCount(values.offset, 'offset') });
    case 'cancel':
      expectArgs(1, 'one RUN id');
      return cancelRun(client, io, readRunId(rest[0]));
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

// A reader that went away (`run-hub logs 7 | head`) is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Flush stdout, then leave (a follower's timers must not keep the process).
    process.stdout.write('', () => process.exit(code));
  },
  (error: Error) => {
    const usage = error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`run-hub: ${error instanceof CliError || usage ? error.message : error.stack}\n`);
    if (usage) process.stderr.write('Try run-hub --help.\n');
    process.exit(usage ? EXIT_USAGE : EXIT_ERROR);
  },
);
