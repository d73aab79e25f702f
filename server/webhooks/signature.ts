import { createHmac } from 'node:crypto';

/** GitHub's scheme: `sha256=` and the hex HMAC-SHA256 of the exact body, keyed with the webhook's secret. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}
