import { randomBytes } from 'node:crypto';
import fs from 'node:fs';

/**
 * The secret in `file`, made (24 random bytes, base64url: safe in a URL) if absent. Only its owner
 * may read it: the file is made with mode 0600, and one found readable by others is set back to 0600.
 */
export function readOrCreateSecret(file: string): string {
  try {
    fs.writeFileSync(file, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
  const secret = fs.readFileSync(file, 'utf8').trim();
  if (!/^[A-Za-z0-9_-]{16,}$/.test(secret)) throw new Error(`Expected ${file} to hold a password of at least 16 letters, digits, - or _`);
  return secret;
}

/** A URL fit to print: its password replaced by `***`. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
}
