// One decode, step by step, for the worker (which posts each step to the page) and for decode() without a worker:
// the header as soon as the file is read, a note as each level of the coarse-to-fine extraction is done (when
// asked), each mesh asked for, coarsest first, all in the file's normalized frame. A sheet's mesh is taken to one
// side on grids fine enough for its shell (sheets.js minCells: 128 cells for ksc's shell); a coarser preview shows
// the shell itself. A file the reader refuses ends the steps with an error message instead of throwing.

import { extractSurfaces } from "./extract.js";
import { loadField } from "./field.js";
import { compact, cutHoles } from "./holes.js";
import { START_CELLS } from "./limits.js";
import { collapseShell, minCells } from "./sheets.js";

/**
 * Decode `bytes` (Uint8Array) at `cells` cells per axis, calling `emit(message, transfer)` with, in order:
 * {kind: "header", version, model, bound, transform, holes, sheet, spheres: Float32Array (4S), ms}; with `levels`,
 * {kind: "level", cells, fraction} per level; {kind: "mesh", cells, positions, normals, indices, evaluations, ms}
 * for each size of `sizes` and for `cells`; or {kind: "error", name, message} (a KscFormatError's message as it
 * is, any other error prefixed with its name). `transfer` lists the message's buffers a worker may hand over.
 */
export function decodeSteps(bytes, cells, sizes, levels, emit) {
  const start = performance.now();
  try {
    const { field, bound, container, model, transform, holes, sheet } = loadField(bytes);
    const spheres = Float32Array.from(field.spheresData);
    const header = { version: container.version, model, bound, transform, holes: holes.length, sheet };
    emit({ kind: "header", ...header, spheres, ms: performance.now() - start }, [spheres.buffer]);
    const count = Math.log2(cells / START_CELLS) + 1;
    let done = 0;
    const onLevel = levels ? (size) => emit({ kind: "level", cells: size, fraction: ++done / count }, []) : null;
    for (let mesh of extractSurfaces(field, bound, cells, sizes, onLevel)) {
      if (holes.length) mesh = { ...mesh, ...compact({ ...mesh, indices: cutHoles(mesh.positions, mesh.indices, holes, (2 * bound) / mesh.cells) }) };
      if (sheet !== null && mesh.cells >= minCells(sheet, bound)) mesh = { ...mesh, ...collapseShell(mesh, sheet) };
      const { positions, normals, indices } = mesh;
      emit({ kind: "mesh", ...mesh, ms: performance.now() - start }, [positions.buffer, normals.buffer, indices.buffer]);
    }
  } catch (error) {
    const known = error.name === "KscFormatError";
    emit({ kind: "error", name: error.name, message: known ? error.message : `${error.name}: ${error.message}` }, []);
  }
}
