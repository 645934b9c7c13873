import { randomFillSync } from 'node:crypto';

const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
/** Every two-character string of the alphabet, indexed by its two 5-bit values. */
const pairs = Array.from({ length: 1024 }, (_, n) => `${alphabet[n >> 5]}${alphabet[n & 31]}`);

/** Random bytes drawn from the CSPRNG 4 KiB at a time: one call per id costs microseconds, which publishing feels. */
const randomPool = Buffer.allocUnsafe(4096);
let randomPoolAt = randomPool.length;

/** The time part of the ids made in the millisecond `headAt`. */
let headAt = -1;
let head = '';

/** Two random characters from the pool's next two bytes. */
function randomPair(): string {
  const pair = pairs[((randomPool[randomPoolAt] as number) & 31) * 32 + ((randomPool[randomPoolAt + 1] as number) & 31)] as string;
  randomPoolAt += 2;
  return pair;
}

/**
 * A prefixed, time-sortable, URL-safe id such as `evt_01jd3k...`: 10 characters of milliseconds,
 * then 16 random characters (80 bits), in Crockford's base32.
 */
export function newId(prefix: string): string {
  const now = Date.now();
  if (now !== headAt) {
    let time = now;
    head = '';
    for (let i = 0; i < 10; i++) {
      head = alphabet[time % 32] + head;
      time = Math.floor(time / 32);
    }
    headAt = now;
  }
  if (randomPoolAt + 16 > randomPool.length) {
    randomFillSync(randomPool);
    randomPoolAt = 0;
  }
  return `${prefix}_${head}${randomPair()}${randomPair()}${randomPair()}${randomPair()}${randomPair()}${randomPair()}${randomPair()}${randomPair()}`;
}
