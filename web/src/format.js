// Reading the `.ksc` container in the browser (format/SPEC.md): magic, version, CRC-32, one zstandard frame
// whose declared size is checked before anything is allocated, the msgpack header (5.x array or 1.x-4.x map)
// and the tensors. Every check of format/container.py is made here too, with the same messages where it matters
// to a user; anything wrong throws KscFormatError.

import { decode as unpackMsgpack } from "@msgpack/msgpack";
import { decompress } from "fzstd";

import { codecFromConfig } from "./codecs.js";
import { KscFormatError } from "./errors.js";
import { MAX_BODY_BYTES, MAX_FILE_BYTES } from "./limits.js";

export const READABLE_MAJORS = [1, 2, 3, 4, 5];
const MAX_HEADER_BYTES = 64 * 1024;
const MAX_TENSORS = 256;
const MAX_TENSOR_VALUES = 4 * 1024 * 1024;
const MAX_DIMS = 4;
const MAGIC = [0x89, 0x4b, 0x53, 0x43];
const STRUCTURAL = ["transform", "bound", "model"];

export const MODEL_FIELDS = ["features", "spheres", "layers", "width", "activation", "weighting", "frequencies", "feature_dim"];
const MODEL_LIMITS = { spheres: [1, 4096], layers: [1, 32], width: [1, 1024], frequencies: [0, 16], feature_dim: [1, 256] };
const MODEL_CHOICES = { features: ["direct", "latent"], activation: ["silu", "relu"], weighting: ["paper", "inverse", "inverse_square"] };
const MODEL_DEFAULTS = { features: "direct", spheres: 64, layers: 5, width: 34, activation: "silu", weighting: "paper", frequencies: 6, feature_dim: 8 };

const isInt = (value) => typeof value === "number" && Number.isInteger(value);
/** A msgpack map (a plain object), not an array, binary or null. */
export const isMap = (value) => value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Uint8Array);

let crcTable = null;

/** CRC-32 (zlib's polynomial) of `bytes`. */
export function crc32(bytes) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** A validated model configuration from a map of its fields (ksc.models.config.ModelConfig's checks). */
export function modelFromMap(section) {
  if (!isMap(section)) throw new KscFormatError("header field 'model' is missing or not a map");
  const unknown = Object.keys(section).filter((key) => !MODEL_FIELDS.includes(key));
  if (unknown.length) throw new KscFormatError(`header field 'model' is invalid: unexpected ${unknown.join(", ")}`);
  const model = { ...MODEL_DEFAULTS, ...section };
  for (const [name, choices] of Object.entries(MODEL_CHOICES)) {
    if (!choices.includes(model[name])) {
      throw new KscFormatError(`header field 'model' is invalid: ${name} must be one of ${choices.join(", ")}, got ${JSON.stringify(model[name])}`);
    }
  }
  for (const [name, [low, high]] of Object.entries(MODEL_LIMITS)) {
    if (!isInt(model[name]) || model[name] < low || model[name] > high) {
      throw new KscFormatError(`header field 'model' is invalid: ${name} must be an integer in [${low}, ${high}], got ${JSON.stringify(model[name])}`);
    }
  }
  return model;
}

/** `[name, shape]` of every tensor `model` stores, in file order (format/layout.py's tensor_layout). */
export function tensorLayout(model) {
  const layout = [["spheres", [model.spheres, 4]]];
  if (model.features === "direct") {
    layout.push(["sphere_layer.weight", [model.feature_dim, 4]], ["sphere_layer.bias", [model.feature_dim]]);
  } else {
    layout.push(["latents", [model.spheres, model.feature_dim]]);
  }
  let inputs = 3 + 6 * model.frequencies + model.feature_dim;
  for (let k = 0; k < model.layers; k++) {
    layout.push([`hidden.${k}.weight`, [model.width, inputs]], [`hidden.${k}.bias`, [model.width]]);
    inputs = model.width;
  }
  layout.push(["output.weight", [1, model.width]], ["output.bias", [1]]);
  return layout;
}

function intValue(value, limit, label) {
  if (!isInt(value) || value < 0 || value > limit) {
    throw new KscFormatError(`${label} must be an integer in [0, ${limit}], got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The declared content size and header length of the zstandard frame at the start of `frame` (RFC 8878). */
function frameParameters(frame) {
  if (frame.length < 5 || frame[0] !== 0x28 || frame[1] !== 0xb5 || frame[2] !== 0x2f || frame[3] !== 0xfd) {
    throw new KscFormatError("body is not a zstandard frame");
  }
  const descriptor = frame[4];
  const sizeFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  const dictionaryBytes = [0, 1, 2, 4][descriptor & 3];
  const sizeBytes = [singleSegment, 2, 4, 8][sizeFlag];
  const headerSize = 5 + (singleSegment ? 0 : 1) + dictionaryBytes + sizeBytes;
  if (frame.length < headerSize) throw new KscFormatError("body is not a zstandard frame: truncated frame header");
  if (sizeBytes === 0) throw new KscFormatError("body declares 0 decompressed bytes; the limit is 16777216 (frame has no content size)");
  let declared = 0;
  const at = headerSize - sizeBytes;
  for (let i = sizeBytes - 1; i >= 0; i--) declared = declared * 256 + frame[at + i];
  if (sizeBytes === 2) declared += 256;
  return { declared, headerSize, hasChecksum: Boolean(descriptor & 4) };
}

/** Length of the zstandard frame from its block headers: the container allows nothing after it. */
function frameLength(frame, headerSize, hasChecksum) {
  let offset = headerSize;
  for (;;) {
    if (offset + 3 > frame.length) throw new KscFormatError("compressed body is truncated inside a block header");
    const block = frame[offset] | (frame[offset + 1] << 8) | (frame[offset + 2] << 16);
    const last = block & 1;
    const kind = (block >> 1) & 3;
    const size = block >>> 3;
    if (kind === 3) throw new KscFormatError("compressed body has a reserved block type");
    offset += 3 + (kind === 1 ? 1 : size);
    if (last) return offset + (hasChecksum ? 4 : 0);
  }
}

function decompressBody(frame) {
  const { declared, headerSize, hasChecksum } = frameParameters(frame);
  if (!(declared > 0 && declared <= MAX_BODY_BYTES)) {
    throw new KscFormatError(`body declares ${declared} decompressed bytes; the limit is ${MAX_BODY_BYTES}`);
  }
  const length = frameLength(frame, headerSize, hasChecksum);
  if (length !== frame.length) throw new KscFormatError(`${frame.length - length} unexpected bytes after the compressed body`);
  let body;
  try {
    body = decompress(frame, new Uint8Array(declared));
  } catch (error) {
    throw new KscFormatError(`body does not decompress: ${error.message}`);
  }
  if (body.length !== declared) throw new KscFormatError(`body decompresses to ${body.length} bytes, its frame declares ${declared}`);
  return body;
}

function unpackHeader(blob) {
  try {
    return unpackMsgpack(blob, {
      maxStrLength: MAX_HEADER_BYTES,
      maxBinLength: 0,
      maxArrayLength: MAX_TENSOR_VALUES,
      maxMapLength: 1024,
      maxExtLength: 0,
    });
  } catch (error) {
    throw new KscFormatError(`header is not valid msgpack: ${error.message}`);
  }
}

function codecsOf(configs) {
  if (!Array.isArray(configs) || !configs.length || configs.length > MAX_TENSORS) {
    throw new KscFormatError(`header field 'codecs' must list 1 to ${MAX_TENSORS} codecs`);
  }
  return configs.map(codecFromConfig);
}

const MAX_HOLES = 256;
const MAX_HOLE_POINTS = 255;

/** The 5.1 `holes` (SPEC.md, "Holes"), checked as ksc's reader checks them. */
function checkHoles(holes) {
  if (!Array.isArray(holes) || holes.length > MAX_HOLES) {
    throw new KscFormatError(`header field 'holes' must be an array of 0 to ${MAX_HOLES} loops`);
  }
  holes.forEach((loop, index) => {
    const points = Array.isArray(loop) ? loop.length / 3 : 0;
    if (!Array.isArray(loop) || loop.length % 3 || points < 3 || points > MAX_HOLE_POINTS || !loop.every((q) => isInt(q) && q >= 0 && q <= 255)) {
      throw new KscFormatError(`holes[${index}] must be 3 to ${MAX_HOLE_POINTS} points as a flat array of integers 0..255 (x, y, z each)`);
    }
  });
  return holes;
}

const MIN_SHEET = 1e-3;
const MAX_SHEET = 0.25;

/** The 5.1 `sheet` (SPEC.md, "Sheets"): the shell's half-thickness, checked as ksc's reader checks it. */
function checkSheet(thickness) {
  if (typeof thickness !== "number" || !(thickness >= MIN_SHEET && thickness <= MAX_SHEET)) {
    throw new KscFormatError(`header field 'sheet' must be a float in [${MIN_SHEET}, ${MAX_SHEET}], got ${JSON.stringify(thickness)}`);
  }
  return thickness;
}

function headerV5(header, minor) {
  if (!Array.isArray(header) || header.length < 6) {
    throw new KscFormatError("a format 5.x header must be a msgpack array [transform, bound, model, codecs, tensors, info]");
  }
  const [transform, bound, modelValues, configs, entries, info] = header;
  if (!Array.isArray(transform) || transform.length !== 4) {
    throw new KscFormatError("header field 'transform' must be an array [x, y, z, scale]");
  }
  if (!Array.isArray(modelValues) || modelValues.length !== MODEL_FIELDS.length) {
    throw new KscFormatError(`header field 'model' must be an array of ${MODEL_FIELDS.length} values`);
  }
  const model = modelFromMap(Object.fromEntries(MODEL_FIELDS.map((name, i) => [name, modelValues[i]])));
  if (!isMap(info) || Object.keys(info).some((key) => STRUCTURAL.includes(key))) {
    throw new KscFormatError("header field 'info' must be a map with string keys other than transform, bound, model");
  }
  const codecs = codecsOf(configs);
  const layout = tensorLayout(model);
  if (!Array.isArray(entries) || entries.length !== layout.length) {
    throw new KscFormatError(`header field 'tensors' must list ${layout.length} entries [codec index, size], one per model tensor`);
  }
  const unpacked = layout.map(([name, shape], index) => {
    const where = `tensors[${index}] (${name})`;
    const entry = entries[index];
    if (!Array.isArray(entry) || entry.length !== 2) throw new KscFormatError(`${where} must be an array [codec index, size]`);
    const codec = codecs[intValue(entry[0], codecs.length - 1, `${where} codec index`)];
    return [where, name, shape, codec, entry[1]];
  });
  const meta = { ...info, transform: { center: transform.slice(0, 3), scale: transform[3] }, bound, model };
  delete meta.holes; // only positions 6 and 7 say where holes are and whether the surface is a sheet
  delete meta.sheet;
  if (minor >= 1 && header.length > 6 && checkHoles(header[6]).length) meta.holes = header[6];
  if (minor >= 1 && header.length > 7) meta.sheet = checkSheet(header[7]);
  return [meta, unpacked];
}

function field(header, key, check, kind) {
  const value = header[key];
  if (!check(value)) throw new KscFormatError(`header field '${key}' is missing or not a ${kind}`);
  return value;
}

function entriesV1(header) {
  const entries = field(header, "tensors", Array.isArray, "list");
  if (entries.length > MAX_TENSORS) throw new KscFormatError(`${entries.length} tensors exceed the limit of ${MAX_TENSORS}`);
  return entries.map((entry, index) => {
    const where = `tensors[${index}]`;
    if (!isMap(entry)) throw new KscFormatError(`${where} must be a map`);
    return [where, entry.name, entry.shape, codecFromConfig(entry.codec), entry.size];
  });
}

function entriesV2(header) {
  const codecs = codecsOf(field(header, "codecs", Array.isArray, "list"));
  const entries = field(header, "tensors", Array.isArray, "list");
  if (entries.length > MAX_TENSORS) throw new KscFormatError(`${entries.length} tensors exceed the limit of ${MAX_TENSORS}`);
  return entries.map((entry, index) => {
    const where = `tensors[${index}]`;
    if (!Array.isArray(entry) || entry.length !== 4) throw new KscFormatError(`${where} must be an array [name, shape, codec index, size]`);
    const [name, shape, codecIndex, size] = entry;
    return [where, name, shape, codecs[intValue(codecIndex, codecs.length - 1, `${where} codec index`)], size];
  });
}

function checkedRecords(entries, dataSize) {
  const names = new Set();
  let total = 0;
  const records = entries.map(([where, name, shape, codec, size]) => {
    if (typeof name !== "string" || !name || names.has(name)) {
      throw new KscFormatError(`${where}.name must be a unique non-empty string, got ${JSON.stringify(name)}`);
    }
    names.add(name);
    if (!Array.isArray(shape) || shape.length < 1 || shape.length > MAX_DIMS || !shape.every((n) => isInt(n) && n > 0 && n <= MAX_TENSOR_VALUES)) {
      throw new KscFormatError(`${where}.shape must be a list of 1 to ${MAX_DIMS} positive sizes, got ${JSON.stringify(shape)}`);
    }
    if (shape.reduce((a, b) => a * b, 1) > MAX_TENSOR_VALUES) {
      throw new KscFormatError(`${where}.shape (${shape}) exceeds the limit of ${MAX_TENSOR_VALUES} values`);
    }
    intValue(size, MAX_BODY_BYTES, `${where}.size`);
    try {
      codec.checkSize(shape, size);
    } catch (error) {
      throw new KscFormatError(`${where}: ${error.message}`);
    }
    total += size;
    return { name, shape, codec, size };
  });
  if (total !== dataSize) throw new KscFormatError(`tensor sizes add up to ${total} bytes but ${dataSize} bytes follow the header`);
  return records;
}

/**
 * Parse and validate `.ksc` bytes (Uint8Array).
 * Returns {version: [major, minor], meta, tensors: [{name, shape, codec, data}], sizes}; throws KscFormatError.
 */
export function readContainer(data) {
  if (data.length > MAX_FILE_BYTES) throw new KscFormatError(`file is ${data.length} bytes; a .ksc file holds at most ${MAX_FILE_BYTES}`);
  if (data.length < 10) throw new KscFormatError(`file is ${data.length} bytes, too short for a .ksc container (truncated?)`);
  if (MAGIC.some((byte, i) => data[i] !== byte)) throw new KscFormatError("not a .ksc file: bad magic bytes");
  const [major, minor] = [data[4], data[5]];
  if (!READABLE_MAJORS.includes(major)) {
    const readable = READABLE_MAJORS.map((m) => `${m}.x`).join(", ");
    throw new KscFormatError(`format version ${major}.${minor} is not supported; this ksc reads ${readable}`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (crc32(data.subarray(0, data.length - 4)) !== view.getUint32(data.length - 4, true)) {
    throw new KscFormatError("checksum mismatch: the file is corrupted or truncated");
  }
  const body = decompressBody(data.subarray(6, data.length - 4));
  if (body.length < 4) throw new KscFormatError("body is too short to hold a header length");
  const headerSize = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(0, true);
  if (headerSize > Math.min(MAX_HEADER_BYTES, body.length - 4)) {
    throw new KscFormatError(`header length ${headerSize} exceeds the limit or the body's ${body.length} bytes`);
  }
  const header = unpackHeader(body.subarray(4, 4 + headerSize));
  let offset = 4 + headerSize;
  let meta;
  let entries;
  if (major >= 5) {
    [meta, entries] = headerV5(header, minor);
  } else {
    if (!isMap(header)) throw new KscFormatError(`a format ${major}.x header must be a msgpack map`);
    entries = major === 1 ? entriesV1(header) : entriesV2(header);
    meta = Object.fromEntries(Object.entries(header).filter(([key]) => key !== "tensors" && key !== "codecs"));
  }
  const records = checkedRecords(entries, body.length - offset);
  const tensors = records.map((record) => {
    const tensor = { ...record, data: body.subarray(offset, offset + record.size) };
    offset += record.size;
    return tensor;
  });
  return {
    version: [major, minor],
    meta,
    tensors,
    sizes: { file: data.length, compressed_body: data.length - 10, body: body.length, header: headerSize },
  };
}

/** The decoded values (Float32Array, row-major) of one tensor record; non-finite values are an error. */
export function decodeTensor(record) {
  const values = record.codec.decode(record.data, record.shape);
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new KscFormatError(`tensor '${record.name}' decodes to non-finite values`);
  }
  return values;
}
