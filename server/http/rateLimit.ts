import { HubError } from '../errors.js';

/** At most `limit` events per key in any sliding minute. */
export class RateLimiter<K> {
  private readonly events = new Map<K, number[]>();

  constructor(private readonly limit: number, private readonly windowMs = 60_000) {}

  /** Records an event, or throws 429 when the key is over its limit. */
  take(key: K, what: string): void {
    const now = Date.now();
    const recent = (this.events.get(key) ?? []).filter((time) => now - time < this.windowMs);
    if (recent.length >= this.limit) {
      const retryAfter = Math.ceil((recent[0] + this.windowMs - now) / 1000);
      this.events.set(key, recent);
      throw new HubError(429, 'rate_limited', `At most ${this.limit} ${what} a minute; try again in ${retryAfter} s`, { headers: { 'Retry-After': String(retryAfter) } });
    }
    recent.push(now);
    this.events.set(key, recent);
  }
}
