import crypto from 'node:crypto';

/** PostgreSQL's default for password_encryption = scram-sha-256. */
const ITERATIONS = 4096;

const hmac = (key: Buffer, text: string) => crypto.createHmac('sha256', key).update(text).digest();

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802, RFC 7677), made here so that
 * `ALTER ROLE … PASSWORD` carries no password: a statement the server logs (log_statement, or an
 * error's statement) then shows only this. The passwords are generated ASCII, so SASLprep leaves them as they are.
 */
export function scramVerifier(password: string, salt = crypto.randomBytes(16), iterations = ITERATIONS): string {
  const salted = crypto.pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const storedKey = crypto.createHash('sha256').update(hmac(salted, 'Client Key')).digest();
  const serverKey = hmac(salted, 'Server Key');
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
