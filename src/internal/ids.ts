// Time-sortable ids (ULID layout: 48-bit ms time + 80 random bits, Crockford base32). Monotonic
// within one process: ids made in the same millisecond still sort in creation order.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

let lastTime = -1;
const lastRandom = new Uint8Array(10);

function incrementRandom(): void {
  for (let index = lastRandom.length - 1; index >= 0; index--) {
    const value = lastRandom[index]!;
    if (value < 255) {
      lastRandom[index] = value + 1;
      return;
    }
    lastRandom[index] = 0;
  }
}

/** A new ULID: 26 characters, sorting by creation time. */
export function ulid(now: number = Date.now()): string {
  if (now <= lastTime) {
    incrementRandom();
    now = lastTime;
  } else {
    lastTime = now;
    crypto.getRandomValues(lastRandom);
    lastRandom[0] = lastRandom[0]! & 0x7f; // room to increment without overflow
  }
  let time = '';
  let remaining = now;
  for (let index = 0; index < 10; index++) {
    time = ALPHABET[remaining % 32]! + time;
    remaining = Math.floor(remaining / 32);
  }
  let random = '';
  let bits = 0;
  let buffer = 0;
  for (const byte of lastRandom) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      random += ALPHABET[(buffer >> bits) & 31]!;
    }
    buffer &= (1 << bits) - 1;
  }
  return time + random;
}

/** A new id with a readable prefix, e.g. `msg_01J…`. */
export function newId(prefix: string): string {
  return `${prefix}_${ulid()}`;
}
