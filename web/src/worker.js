// The page's decoding thread: rebuilds the network from the file's bytes and extracts the surface at each
// grid size asked for, posting each mesh as soon as it exists, so that the page keeps drawing while it works.
// In: {bytes: Uint8Array, cells: 128, sizes: [64]}. Out: {kind: "header", ...}, then {kind: "mesh", cells,
// positions, normals, indices, evaluations, ms} for each grid size of one coarse-to-fine pass, coarsest first, or
// {kind: "error", message} for a file the reader refuses.

import { extractSurfaces } from "./extract.js";
import { loadField } from "./field.js";

self.onmessage = ({ data: { bytes, cells, sizes } }) => {
  const start = performance.now();
  try {
    const { field, bound, container, model } = loadField(bytes);
    const spheres = Float32Array.from(field.spheresData);
    self.postMessage({ kind: "header", version: container.version, model, bound, spheres, ms: performance.now() - start }, [spheres.buffer]);
    for (const mesh of extractSurfaces(field, bound, cells, sizes)) {
      const { positions, normals, indices } = mesh;
      self.postMessage({ kind: "mesh", ...mesh, ms: performance.now() - start }, [positions.buffer, normals.buffer, indices.buffer]);
    }
  } catch (error) {
    self.postMessage({ kind: "error", message: error.name === "KscFormatError" ? error.message : `${error.name}: ${error.message}` });
  }
};
