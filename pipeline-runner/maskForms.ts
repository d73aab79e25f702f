/**
 * The forms a secret takes in output, each as a "byte string" (a latin1 string of its UTF-8 bytes,
 * one character per byte): the masker matches bytes. What a step prints a secret as:
 * as it is, each line of a multi-line one, base64 (a Basic auth header; at any of the three byte
 * alignments, inside a longer base64 text), URL-encoded (a query string, a form body), and
 * JSON-escaped (a request dumped as JSON: JavaScript's, Python's ASCII-only, Go's HTML-safe).
 */
export const MASK = '[MASKED]';

/** Shorter values (or lines of a multi-line value) are not masked: they would mask ordinary text. */
export const MIN_MASKED_BYTES = 6;

const bytesOf = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

/** The base64 text that `bytes` gives wherever it sits: for each alignment, the characters that depend on it alone. */
function base64Forms(bytes: Buffer): string[] {
  const forms = [bytes.toString('base64'), bytes.toString('base64url')];
  for (let shift = 0; shift < 3; shift++) {
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes]);
    const first = Math.ceil((shift * 8) / 6);
    const last = Math.floor(((shift + bytes.length) * 8) / 6);
    if (last - first < MIN_MASKED_BYTES) continue;
    forms.push(encoded.toString('base64').slice(first, last), encoded.toString('base64url').slice(first, last));
  }
  return forms;
}

const escapeNonAscii = (json: string) => json.replace(/[\u0080-\uffff]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
const escapeHtml = (json: string) => json.replace(/[<>&\u2028\u2029]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** Every form of one value, as byte strings, without repeats. */
export function formsOf(value: string): string[] {
  const texts = new Set<string>();
  const parts = [value];
  if (/[\r\n]/.test(value)) for (const line of value.split(/\r?\n|\r/)) if (Buffer.byteLength(line) >= MIN_MASKED_BYTES) parts.push(line);
  for (const part of parts) {
    texts.add(part);
    const json = JSON.stringify(part).slice(1, -1);
    texts.add(json);
    texts.add(escapeNonAscii(json));
    texts.add(escapeHtml(json));
    const url = encodeURIComponent(part);
    texts.add(url);
    texts.add(url.replace(/%20/g, '+'));
  }
  const forms = new Set([...texts].map(bytesOf));
  for (const part of parts) for (const form of base64Forms(Buffer.from(part, 'utf8'))) forms.add(form);
  return [...forms].filter((form) => form.length >= MIN_MASKED_BYTES);
}
