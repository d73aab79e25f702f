/**
 * Lets a promise from an event handler or an effect run on its own: a failure it does not show
 * itself is logged to the console instead of left an unhandled rejection.
 */
export function runDetached(what: string, promise: Promise<unknown>): void {
  promise.catch((error: unknown) => console.error(`${what} failed:`, error));
}
