export class LogHub {
  forgetRun(_runId: number): void {}
}
