/** A runner process this server started: how to hand it its run, and how it ended. */
export interface RunnerProcess {
  readonly pid: number;
  /** unique to this process; the run that takes it carries it as HUB_RUN_TOKEN */
  readonly token: string;
  /** set as soon as the process exits, whoever is watching it by then */
  readonly exited: { code: number | null; signal: string | null } | null;
  /** Writes the run (JSON) to its stdin and closes it; null closes it empty (an idle runner then exits quietly). */
  send(input: string | null): void;
  /** False once its exit can no longer be reported (the thread that started it is gone): poll its pid then. */
  readonly followed: boolean;
  /** Called once when it exits (at once, if it already has). */
  onExit(listener: () => void): void;
}
