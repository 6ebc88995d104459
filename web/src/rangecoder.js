// Adaptive binary range decoding of signed integers: the `uniform_ac` and `sorted_uniform_ac` back end.
// The bitstream is format/SPEC.md's "The range coder"; this is the same loop as format/rangecoder.py's
// decode_integers, with the same bounds (at most 29 unary ones, no unread bytes).

import { KscFormatError } from "./errors.js";

const PROBABILITY_BITS = 12;
const ONE = 1 << PROBABILITY_BITS;
const TOP = 1 << 24;
const ADAPT_LIMIT = 60;
const FLUSH_BYTES = 4;
export const MAX_MAGNITUDE_BITS = 30;

const ZERO = 0;
const SIGN = 1;
const UNARY = 2;
const MANTISSA = UNARY + MAX_MAGNITUDE_BITS;
const CONTEXTS = MANTISSA + MAX_MAGNITUDE_BITS * MAX_MAGNITUDE_BITS;

/** An upper bound on how many integers a stream of `streamBytes` bytes can hold (each costs >= 0.024 bits). */
export function maxValues(streamBytes) {
  return 400 * (streamBytes + FLUSH_BYTES + 1);
}

/**
 * The `count` integers range-coded in `data` (Uint8Array), as an Int32Array.
 * Throws KscFormatError on a magnitude prefix past 29 ones or bytes the decoder never reaches.
 */
export function decodeIntegers(data, count) {
  const size = data.length;
  const zeros = new Int32Array(CONTEXTS).fill(1);
  const ones = new Int32Array(CONTEXTS).fill(1);
  let code = 0;
  for (let i = 0; i < 4; i++) code = ((code << 8) | (i < size ? data[i] : 0)) >>> 0;
  let span = 0xffffffff;
  let position = 4;

  const bit = (context) => {
    let z = zeros[context];
    let o = ones[context];
    let p = Math.floor((z * ONE) / (z + o));
    p = p < 1 ? 1 : p > ONE - 1 ? ONE - 1 : p;
    const bound = (span >>> PROBABILITY_BITS) * p;
    let result;
    if (code < bound) {
      span = bound;
      result = 0;
      z += 2;
    } else {
      code -= bound;
      span -= bound;
      result = 1;
      o += 2;
    }
    if (z + o > ADAPT_LIMIT) {
      z = (z + 1) >> 1;
      o = (o + 1) >> 1;
    }
    zeros[context] = z;
    ones[context] = o;
    while (span < TOP) {
      span = (span << 8) >>> 0;
      code = ((code << 8) | (position < size ? data[position] : 0)) >>> 0;
      position += 1;
    }
    return result;
  };

  const values = new Int32Array(count);
  for (let index = 0; index < count; index++) {
    if (bit(ZERO)) continue;
    const negative = bit(SIGN);
    let length = 0;
    while (length < MAX_MAGNITUDE_BITS - 1 && bit(UNARY + length)) length += 1;
    let magnitude = 1;
    const base = MANTISSA + length * MAX_MAGNITUDE_BITS;
    for (let place = length - 1; place >= 0; place--) magnitude = (magnitude << 1) | bit(base + place);
    values[index] = negative ? -magnitude : magnitude;
  }
  if (size > position) throw new KscFormatError(`range-coded stream has ${size - position} bytes past its end`);
  return values;
}
