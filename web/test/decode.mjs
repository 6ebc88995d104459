// The JS decoder's view of `.ksc` files, for tests/test_web.py: reads {"files": [base64, ...], "points": [x, y, z, ...],
// "cells": N} on stdin and prints one JSON list, per file {version, model, bound, values, surface} (the field at the
// points, normalized frame; with "cells", the extracted surface's vertices, triangles, enclosed volume and how many
// edges are not shared by exactly two triangles) or {error} with the reader's one-line KscFormatError message, or
// {crash} for any other exception.
import { readFileSync } from "node:fs";

import { extractSurface } from "../src/extract.js";
import { loadField } from "../src/field.js";

function surfaceOf(field, bound, cells) {
  const { positions: P, indices: I } = extractSurface(field, bound, cells);
  let volume = 0;
  const edges = new Map();
  for (let f = 0; f < I.length; f += 3) {
    const [a, b, c] = [I[f], I[f + 1], I[f + 2]].map((i) => [P[3 * i], P[3 * i + 1], P[3 * i + 2]]);
    volume += (a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) + a[2] * (b[0] * c[1] - b[1] * c[0])) / 6;
    for (let e = 0; e < 3; e++) {
      const [u, v] = [I[f + e], I[f + ((e + 1) % 3)]];
      const key = `${Math.min(u, v)},${Math.max(u, v)}`;
      edges.set(key, (edges.get(key) || 0) + 1);
    }
  }
  const unshared = [...edges.values()].filter((count) => count !== 2).length;
  return { vertices: P.length / 3, triangles: I.length / 3, volume, unshared };
}

const { files, points = [], cells = 0 } = JSON.parse(readFileSync(0, "utf8"));
const results = files.map((encoded) => {
  try {
    const { field, model, bound, container } = loadField(new Uint8Array(Buffer.from(encoded, "base64")));
    const values = Array.from(field.values(points));
    if (!values.every(Number.isFinite)) return { error: "the network gives non-finite values" };
    const surface = cells ? surfaceOf(field, bound, cells) : null;
    return { version: container.version, model, bound, values, surface };
  } catch (error) {
    return error.name === "KscFormatError" ? { error: error.message } : { crash: `${error.name}: ${error.message}` };
  }
});
console.log(JSON.stringify(results));
