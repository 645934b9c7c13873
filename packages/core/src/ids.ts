import { randomFillSync } from 'node:crypto';

const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';

/** Random bytes drawn from the CSPRNG 4 KiB at a time: one call per id costs microseconds, which publishing feels. */
const randomPool = Buffer.allocUnsafe(4096);
let randomPoolAt = randomPool.length;

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
  if (randomPoolAt + 16 > randomPool.length) {
    randomFillSync(randomPool);
    randomPoolAt = 0;
  }
  let tail = '';
  for (let i = 0; i < 16; i++) tail += alphabet[(randomPool[randomPoolAt + i] as number) % 32];
  randomPoolAt += 16;
  return `${prefix}_${head}${tail}`;
}
