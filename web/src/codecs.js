// Tensor codecs (format/SPEC.md, "Tensor codecs"): a codec config from the header -> a decoder of its bytes.
// Each decoder returns a Float32Array of the tensor's values, row-major, computed as format/codecs.py does
// (in double precision, then rounded to float32).

import { KscFormatError } from "./errors.js";
import { decodeIntegers, maxValues } from "./rangecoder.js";

const MAX_BITS = 16;
const MAX_BYTES_PER_VALUE = 90;

const isInt = (value) => typeof value === "number" && Number.isInteger(value);

function checkBits(bits) {
  if (!isInt(bits) || bits < 1 || bits > MAX_BITS) {
    throw new KscFormatError(`codec field 'bits' must be an integer in [1, ${MAX_BITS}], got ${JSON.stringify(bits)}`);
  }
  return bits;
}

function numbers(values, name) {
  if (!Array.isArray(values) || !values.every((v) => typeof v === "number" && Math.abs(v) < 2 ** 63)) {
    throw new KscFormatError(`codec 'uniform' field '${name}' must be a list of numbers`);
  }
  return Float64Array.from(values);
}

const count = (shape) => shape.reduce((a, b) => a * b, 1);

/** Unsigned integers of `bits` (u8 up to 8 bits, else u16 little-endian) from `data`. */
function unsignedIntegers(data, bits, n) {
  if (bits <= 8) return data.subarray(0, n);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = view.getUint16(2 * i, true);
  return out;
}

function float16(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

class Uniform {
  constructor({ bits, low, step, axis = null, ...rest }) {
    refuseUnknown("uniform", rest);
    this.bits = checkBits(bits);
    this.low = numbers(low, "low");
    this.step = numbers(step, "step");
    this.axis = axis;
    if (this.low.length !== this.step.length || !this.low.length) {
      throw new KscFormatError("codec 'uniform' needs 'low' and 'step' lists of the same non-zero length");
    }
    for (let i = 0; i < this.low.length; i++) {
      if (!Number.isFinite(this.low[i]) || !Number.isFinite(this.step[i]) || !(this.step[i] > 0)) {
        throw new KscFormatError("codec 'uniform' has a non-finite 'low' or a non-positive 'step'");
      }
    }
    if (axis !== null && (!isInt(axis) || axis < 0)) {
      throw new KscFormatError(`codec 'uniform' field 'axis' must be null or a non-negative integer`);
    }
    if (axis === null && this.low.length !== 1) {
      throw new KscFormatError("codec 'uniform' without 'axis' must have exactly one 'low' and 'step'");
    }
  }

  checkSize(shape, size) {
    if (size !== count(shape) * (this.bits <= 8 ? 1 : 2)) {
      throw new KscFormatError(`size ${size} does not fit shape (${shape}) with codec 'uniform'`);
    }
  }

  /** Index into low/step of each flat position: the coordinate along `axis`. */
  parameterIndex(shape) {
    if (this.axis === null) return () => 0;
    if (this.axis >= shape.length || shape[this.axis] !== this.low.length) {
      throw new KscFormatError(
        `codec 'uniform' has ${this.low.length} parameters, tensor shape (${shape}) needs one per axis ${this.axis}`,
      );
    }
    const inner = shape.slice(this.axis + 1).reduce((a, b) => a * b, 1);
    const along = shape[this.axis];
    return (i) => Math.floor(i / inner) % along;
  }

  decode(data, shape) {
    const n = count(shape);
    const index = this.parameterIndex(shape);
    const q = unsignedIntegers(data, this.bits, n);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const p = index(i);
      out[i] = this.low[p] + q[i] * this.step[p];
    }
    return out;
  }
}

class UniformRows {
  constructor({ bits, ...rest }) {
    refuseUnknown("uniform_rows", rest);
    this.bits = checkBits(bits);
  }

  rows(shape) {
    if (shape.length !== 2) throw new KscFormatError(`codec 'uniform_rows' needs a 2-D tensor, got shape (${shape})`);
    return shape[0];
  }

  checkSize(shape, size) {
    if (size !== this.rows(shape) * 4 + count(shape) * (this.bits <= 8 ? 1 : 2)) {
      throw new KscFormatError(`size ${size} does not fit shape (${shape}) with codec 'uniform_rows'`);
    }
  }

  decode(data, shape) {
    const rows = this.rows(shape);
    const columns = shape[1];
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const q = unsignedIntegers(data.subarray(rows * 4), this.bits, rows * columns);
    const out = new Float32Array(rows * columns);
    for (let r = 0; r < rows; r++) {
      const low = float16(view.getUint16(4 * r, true));
      const step = float16(view.getUint16(4 * r + 2, true));
      if (!Number.isFinite(low) || !Number.isFinite(step) || !(step > 0)) {
        throw new KscFormatError("codec 'uniform_rows' has a non-finite or non-positive row parameter");
      }
      for (let c = 0; c < columns; c++) out[r * columns + c] = low + q[r * columns + c] * step;
    }
    return out;
  }
}

class UniformAc {
  constructor({ bits, ...rest }) {
    refuseUnknown("uniform_ac", rest);
    this.bits = checkBits(bits);
  }

  checkSize(shape, size) {
    const n = count(shape);
    const stream = size - 4;
    if (!(stream >= 0 && stream <= MAX_BYTES_PER_VALUE * n) || n > maxValues(stream)) {
      throw new KscFormatError(`size ${size} is impossible for shape (${shape}) with codec 'uniform_ac'`);
    }
  }

  decode(data, shape) {
    this.checkSize(shape, data.length);
    const step = new DataView(data.buffer, data.byteOffset, 4).getFloat32(0, true);
    if (!Number.isFinite(step) || !(step > 0)) {
      throw new KscFormatError("codec 'uniform_ac' has a non-finite or non-positive step");
    }
    const q = decodeIntegers(data.subarray(4), count(shape));
    return Float32Array.from(q, (v) => v * step);
  }
}

class SortedUniformAc extends Uniform {
  constructor({ bits, low, step, ...rest }) {
    refuseUnknown("sorted_uniform_ac", rest);
    super({ bits, low, step, axis: 1 });
  }

  checkSize(shape, size) {
    if (shape.length !== 2 || shape[1] !== this.low.length) {
      throw new KscFormatError(`codec 'sorted_uniform_ac' has ${this.low.length} columns, tensor shape is (${shape})`);
    }
    const n = count(shape);
    if (!(size >= 0 && size <= MAX_BYTES_PER_VALUE * n) || n > maxValues(size)) {
      throw new KscFormatError(`size ${size} is impossible for shape (${shape}) with codec 'sorted_uniform_ac'`);
    }
  }

  decode(data, shape) {
    this.checkSize(shape, data.length);
    const [rows, columns] = shape;
    const stored = decodeIntegers(data, rows * columns); // column-major; column 0 as differences
    const out = new Float32Array(rows * columns);
    const top = 2 ** this.bits - 1;
    let running = 0;
    for (let c = 0; c < columns; c++) {
      for (let r = 0; r < rows; r++) {
        let q = stored[c * rows + r];
        if (c === 0) q = running += q;
        if (q < 0 || q > top) {
          throw new KscFormatError(`codec 'sorted_uniform_ac' decodes integers outside [0, 2**${this.bits} - 1]`);
        }
        out[r * columns + c] = this.low[c] + q * this.step[c];
      }
    }
    return out;
  }
}

function refuseUnknown(id, rest) {
  const extra = Object.keys(rest);
  if (extra.length) throw new KscFormatError(`codec '${id}' has bad fields: unexpected ${extra.join(", ")}`);
}

const CODECS = { uniform: Uniform, uniform_rows: UniformRows, uniform_ac: UniformAc, sorted_uniform_ac: SortedUniformAc };

/** A codec from its header config; unknown ids or fields throw KscFormatError. */
export function codecFromConfig(config) {
  if (config === null || typeof config !== "object" || Array.isArray(config) || !("id" in config)) {
    throw new KscFormatError("tensor codec must be a map with an 'id'");
  }
  const { id, ...fields } = config;
  if (typeof id !== "string" || !Object.hasOwn(CODECS, id)) {
    throw new KscFormatError(`unknown tensor codec ${JSON.stringify(id)} (this reader knows ${Object.keys(CODECS).sort().join(", ")})`);
  }
  return new CODECS[id](fields);
}
