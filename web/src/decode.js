// ksc-decoder's entry point: a `.ksc` file's bytes to a triangle mesh in the input's original coordinates.
// In a browser the work runs off the main thread, in the worker (worker.js, shipped next to this module as
// ksc-worker.js; bundlers find it through `new URL(..., import.meta.url)`); where there is no Worker (Node.js) or
// with {worker: false} it runs in the calling thread. The reader refuses what ksc's Python reader refuses, with
// the same one-line messages (KscFormatError).

import { KscFormatError } from "./errors.js";
import { MAX_FILE_BYTES, START_CELLS } from "./limits.js";

export { KscFormatError };

/** Cells per axis of the extraction grid when none is asked for: the viewer's fine surface. */
export const DEFAULT_CELLS = 128;
/** The finest grid decode() accepts (the Python decoder's --resolution 1024 is 1023 cells). */
export const MAX_CELLS = 512;

/**
 * Decode a `.ksc` file.
 *
 * @param {Uint8Array | ArrayBuffer} bytes the file's contents (not modified; a copy goes to the worker)
 * @param {{cells?: number, preview?: number, worker?: boolean, onProgress?: (event: object) => void}} [options]
 *   cells: grid cells per axis, 16 times a power of two up to MAX_CELLS (default 128);
 *   preview: a coarser grid (16 times a power of two, below cells) whose mesh is handed to onProgress as soon as
 *   it exists, for something to show while the fine one is extracted (it costs little: the extraction passes
 *   through it anyway);
 *   worker: decode in a Web Worker (default: wherever `Worker` exists);
 *   onProgress: called with {stage: "header", info} once the file is read, {stage: "surface", cells, fraction}
 *   as each level of the coarse-to-fine extraction is done (fraction reaches 1 with the last), and with a
 *   preview, {stage: "preview", cells, positions, normals, indices} (original coordinates) once.
 * @returns {Promise<{positions: Float32Array, normals: Float32Array, indices: Uint32Array, spheres: Float32Array,
 *   info: object}>} positions (3V) and unit outward normals (3V) in the original coordinates, triangles as
 *   vertex indices (3F, counter-clockwise seen from outside), the key spheres as (x, y, z, r) rows (4S, original
 *   coordinates), and info: {version: [major, minor], model, bound, transform: {center, scale}, cells,
 *   evaluations, ms}.
 */
export async function decode(bytes, options = {}) {
  const { cells = DEFAULT_CELLS, preview = null, worker = typeof Worker !== "undefined", onProgress = null } = options;
  const data = ownBytes(bytes);
  checkCells(cells, "cells");
  if (preview !== null) {
    checkCells(preview, "preview");
    if (!(preview < cells)) throw new RangeError(`preview must be a coarser grid than cells (${cells}), got ${preview}`);
  }
  if (onProgress !== null && typeof onProgress !== "function") throw new TypeError("onProgress must be a function");
  const sizes = preview === null ? [] : [preview];
  const start = performance.now();
  const result = await (worker ? inWorker : inThread)(data, cells, sizes, onProgress);
  result.info.ms = performance.now() - start;
  return toOriginal(result, result.info.transform);
}

function ownBytes(bytes) {
  let view;
  if (bytes instanceof Uint8Array) view = bytes;
  else if (bytes instanceof ArrayBuffer) view = new Uint8Array(bytes);
  else throw new TypeError("decode() takes the file's bytes as a Uint8Array or an ArrayBuffer");
  if (view.length > MAX_FILE_BYTES) throw new KscFormatError(`file is ${view.length} bytes; a .ksc file holds at most ${MAX_FILE_BYTES}`);
  return view.slice(); // the worker takes this copy; the caller's buffer stays as it was
}

function checkCells(cells, name) {
  const power = Math.log2(cells / START_CELLS);
  if (!(Number.isInteger(cells) && cells >= START_CELLS && cells <= MAX_CELLS && Number.isInteger(power))) {
    throw new RangeError(`${name} must be ${START_CELLS} times a power of two up to ${MAX_CELLS}, got ${cells}`);
  }
}

/**
 * Collects core.js's decodeSteps messages into decode()'s result: `settle(error, result)` once, at the mesh of
 * `cells` or at an error; progress reports (and the preview's mesh) along the way.
 */
function collector(cells, onProgress, settle) {
  let header = null;
  return (message) => {
    if (message.kind === "error") {
      settle(message.name === "KscFormatError" ? new KscFormatError(message.message) : new Error(message.message));
    } else if (message.kind === "header") {
      const { version, model, bound, transform, holes, sheet, spheres } = message;
      header = { version, model, bound, transform, holes, sheet, spheres };
      onProgress?.({ stage: "header", info: { version, model, bound, transform, holes, sheet } });
    } else if (message.kind === "level") {
      onProgress?.({ stage: "surface", cells: message.cells, fraction: message.fraction });
    } else if (message.kind === "mesh" && message.cells === cells) {
      const { spheres, ...about } = header;
      const { positions, normals, indices, evaluations } = message;
      settle(null, { positions, normals, indices, spheres, info: { ...about, cells, evaluations } });
    } else if (message.kind === "mesh") {
      const { positions, normals, indices } = message;
      onProgress?.(toOriginal({ stage: "preview", cells: message.cells, positions, normals, indices }, header.transform));
    }
  };
}

async function inThread(data, cells, sizes, onProgress) {
  const { decodeSteps } = await import("./core.js"); // the reader and the network load only where they run
  let outcome = null;
  decodeSteps(data, cells, sizes, onProgress !== null, collector(cells, onProgress, (error, result) => (outcome ??= { error, result })));
  if (outcome.error) throw outcome.error;
  return outcome.result;
}

function inWorker(data, cells, sizes, onProgress) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./ksc-worker.js", import.meta.url), { type: "module" });
    const take = collector(cells, onProgress, (error, result) => {
      worker.terminate();
      if (error) reject(error);
      else resolve(result);
    });
    worker.onmessage = ({ data: message }) => take(message);
    worker.onerror = (event) => {
      worker.terminate();
      reject(new Error(`the decoder's worker stopped: ${event.message || "worker error"}`));
    };
    worker.postMessage({ bytes: data, cells, sizes, levels: onProgress !== null }, [data.buffer]);
  });
}

/** Maps `result`'s positions and spheres (if any) from the file's normalized frame to the input's coordinates. */
function toOriginal(result, { center, scale }) {
  const { positions, spheres } = result;
  for (let v = 0; v < positions.length; v += 3) {
    for (let c = 0; c < 3; c++) positions[v + c] = positions[v + c] * scale + center[c];
  }
  if (spheres) {
    for (let s = 0; s < spheres.length; s += 4) {
      for (let c = 0; c < 3; c++) spheres[s + c] = spheres[s + c] * scale + center[c];
      spheres[s + 3] *= scale;
    }
  }
  return result;
}
