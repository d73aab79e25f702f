import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** The format of a sealed value, so that a later one can be told apart. */
const VERSION = 'v1:';

/**
 * The key in `file` (32 random bytes, base64), made if absent. Only its owner may read it: it is
 * made with mode 0600, and one found readable by others is set back to 0600.
 */
export function readOrCreateKey(file: string): Buffer {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  try {
    fs.writeFileSync(file, `${randomBytes(KEY_BYTES).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== KEY_BYTES) throw new Error(`Expected ${file} (HUB_SECRET_KEY_FILE) to hold ${KEY_BYTES} bytes in base64, got ${key.length} bytes`);
  return key;
}

/** The value cannot be unsealed: another key, or a row copied to another project or name. */
export class UnsealError extends Error {}

/**
 * Seals secret values with AES-256-GCM: a fresh 96-bit IV per value, and the project and name as
 * additional data, so a sealed value copied to another project or name does not open.
 */
export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== KEY_BYTES) throw new Error(`A secret key is ${KEY_BYTES} bytes, got ${key.length}`);
  }

  static fromFile(file: string): SecretBox {
    return new SecretBox(readOrCreateKey(file));
  }

  seal(projectId: number, name: string, value: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(additionalData(projectId, name));
    const sealed = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    return VERSION + Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64');
  }

  unseal(projectId: number, name: string, sealed: string): string {
    const bytes = sealed.startsWith(VERSION) ? Buffer.from(sealed.slice(VERSION.length), 'base64') : Buffer.alloc(0);
    if (bytes.length < IV_BYTES + TAG_BYTES) throw new UnsealError(`Secret ${name} of project ${projectId} is not a sealed value`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, bytes.subarray(0, IV_BYTES));
      decipher.setAAD(additionalData(projectId, name));
      decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch (error) {
      throw new UnsealError(`Secret ${name} of project ${projectId} does not open with this key (is HUB_SECRET_KEY_FILE the same on every hub and worker?)`, { cause: error });
    }
  }
}

const additionalData = (projectId: number, name: string) => Buffer.from(`run-hub secret\0${projectId}\0${name}`);
