import { randomBytes } from 'node:crypto';

const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * A prefixed, time-sortable, URL-safe id such as `evt_01jd3k...`: 10 characters of milliseconds,
 * then 16 random characters (80 bits), in Crockford's base32.
 */
export function newId(prefix: string): string {
  let time = Date.now();
  let head = '';
  for (let i = 0; i < 10; i++) {
    head = alphabet[time % 32] + head;
    time = Math.floor(time / 32);
  }
  const random = randomBytes(16);
  let tail = '';
  for (const byte of random) tail += alphabet[byte % 32];
  return `${prefix}_${head}${tail}`;
}
