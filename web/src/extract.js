// The zero level of a field as a triangle mesh, in the browser: the network evaluated only near the surface,
// coarse to fine (ksc/decoding/octree.py's idea), then marching cubes, as ksc's Python decoder extracts it (ksc/decoding/extract.py,
// scikit-image's marching cubes): one vertex on each grid edge the surface crosses, where the linear
// interpolation of its two nodes' values is zero, so that both decoders put the same vertices on the same grid.
// The triangulation of each of the 256 cell cases is built when the module loads, from a rule on each cube face
// (see TRIANGLES) rather than a copied table. Vertex normals come from the field's own values around each
// vertex. Everything is in the normalized frame, positive inside.

import { START_CELLS } from "./limits.js";

const MARGIN = 1.5; // a cell whose centre lies further than MARGIN x its half-diagonal from the zero level is empty
const DISTANCE_CELLS = 32; // down to cells this coarse (per axis) the distance test splits cells; finer, only signs

const CORNERS = [
  [0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1],
];
const EDGES = [
  [0, 1], [2, 3], [4, 5], [6, 7], [0, 2], [1, 3], [4, 6], [5, 7], [0, 4], [1, 5], [2, 6], [3, 7],
]; // along x (0-3), y (4-7), z (8-11); each from its lower corner
const EDGE_AXIS = EDGES.map(([p, q]) => CORNERS[q].findIndex((d, n) => d !== CORNERS[p][n]));
const FACES = [[0, 2, 6, 4], [1, 3, 7, 5], [0, 1, 5, 4], [2, 3, 7, 6], [0, 1, 3, 2], [4, 5, 7, 6]]; // corners in cyclic order

/**
 * TRIANGLES[config]: the triangles (three edge indices each, counter-clockwise seen from outside) of a cell whose
 * corners n with bit n of `config` set are inside. On each cube face the crossed edges are joined in pairs: two
 * crossings make one segment; four (diagonal corners alike) make two segments, each cutting off an inside
 * corner, so that the two cells sharing a face always join its crossings alike and the surface has no cracks.
 * The segments close into loops around the cell, each a fan of triangles turned to face the outside corners.
 * Only ambiguous faces and cells can differ from scikit-image's triangles (which decides them by the values);
 * the vertices are the same.
 */
const TRIANGLES = Array.from({ length: 256 }, (_, config) => cellTriangles(config));

function cellTriangles(config) {
  const inside = (n) => (config >> n) & 1;
  const edgeOf = (a, b) => EDGES.findIndex(([p, q]) => (p === a && q === b) || (p === b && q === a));
  const links = Array.from({ length: 12 }, () => []);
  const link = (e, f) => {
    links[e].push(f);
    links[f].push(e);
  };
  for (const face of FACES) {
    const crossed = [];
    for (let s = 0; s < 4; s++) if (inside(face[s]) !== inside(face[(s + 1) % 4])) crossed.push(edgeOf(face[s], face[(s + 1) % 4]));
    if (crossed.length === 2) link(crossed[0], crossed[1]);
    if (crossed.length === 4) {
      for (let s = 0; s < 4; s++) if (inside(face[s])) link(edgeOf(face[(s + 3) % 4], face[s]), edgeOf(face[s], face[(s + 1) % 4]));
    }
  }
  const triangles = [];
  const seen = new Set();
  for (let start = 0; start < 12; start++) {
    if (!links[start].length || seen.has(start)) continue;
    const loop = [start];
    seen.add(start);
    for (let previous = -1, edge = start; ; ) {
      const next = links[edge][0] !== previous ? links[edge][0] : links[edge][1];
      if (next === start) break;
      loop.push(next);
      seen.add(next);
      [previous, edge] = [edge, next];
    }
    // Newell's normal of the loop (through its edges' midpoints) against the sum of its edges' directions from
    // their inside corner to their outside one.
    const middle = (e) => [0, 1, 2].map((n) => (CORNERS[EDGES[e][0]][n] + CORNERS[EDGES[e][1]][n]) / 2);
    const normal = [0, 0, 0];
    const outward = [0, 0, 0];
    for (let a = 0; a < loop.length; a++) {
      const [p, q] = [middle(loop[a]), middle(loop[(a + 1) % loop.length])];
      for (let n = 0; n < 3; n++) normal[n] += (p[(n + 1) % 3] - q[(n + 1) % 3]) * (p[(n + 2) % 3] + q[(n + 2) % 3]);
      outward[EDGE_AXIS[loop[a]]] += inside(EDGES[loop[a]][0]) ? 1 : -1;
    }
    const facing = normal[0] * outward[0] + normal[1] * outward[1] + normal[2] * outward[2];
    if (facing === 0) throw new Error(`marching cubes: no outward side for case ${config}`); // never, for any case
    if (facing < 0) loop.reverse();
    for (let a = 1; a + 1 < loop.length; a++) triangles.push(loop[0], loop[a], loop[a + 1]);
  }
  return Int8Array.from(triangles);
}

/**
 * The surface of `field` (a SphereField) over [-bound, bound]^3, coarse to fine up to `cells` cells per axis
 * (START_CELLS times a power of two). Down to DISTANCE_CELLS per axis a cell is split where its corners differ in
 * sign or its centre lies within MARGIN half-diagonals of the zero level (a distance changes by at most that
 * much across a cell), so that small and thin pieces are found; finer, only crossed cells are split, and the
 * crossed cells' neighbours across every crossed edge are added until none is missing, which follows each
 * piece of surface wherever it goes (a third fewer evaluations than the distance test all the way, for the
 * same surfaces on seven default files).
 * Yields {cells, positions, normals: Float32Array (3V), indices: Uint32Array (3F), evaluations} for each grid
 * size in `sizes` (and for `cells` itself), coarsest first: a coarse mesh costs nothing the fine one does not.
 * `onLevel(size)`, if given, is called as each level's crossed cells are known (for progress reports).
 */
export function* extractSurfaces(field, bound, cells, sizes = [], onLevel = null) {
  if (!(cells >= START_CELLS && Number.isInteger(Math.log2(cells / START_CELLS)))) {
    throw new RangeError(`cells must be ${START_CELLS} times a power of two, got ${cells}`);
  }
  const N = cells + 1;
  const h = (2 * bound) / cells;
  const axis = Float64Array.from({ length: N }, (_, i) => -bound + h * i);
  const tables = [0, 1, 2].map((dim) => field.axisTable(axis, dim));
  const Q = field.width;
  const position = new Float64Array(Q);
  const values = new Float32Array(N * N * N).fill(NaN);
  const strides = [N * N, N, 1];
  let evaluations = 0;

  const nodeValue = (id) => {
    const known = values[id];
    if (known === known) return known; // not NaN
    const i = Math.floor(id / (N * N));
    const j = Math.floor(id / N) % N;
    const k = id % N;
    const [tx, ty, tz] = tables;
    const a = i * Q;
    const b = j * Q;
    const c = k * Q;
    for (let q = 0; q < Q; q++) position[q] = tx[a + q] + ty[b + q] + tz[c + q];
    let v = field.run(axis[i], axis[j], axis[k], position);
    if (i === 0 || j === 0 || k === 0 || i === N - 1 || j === N - 1 || k === N - 1) v = Math.min(v, -h / 2); // closed at the box
    values[id] = v;
    evaluations += 1;
    return v;
  };
  const cornerOffsets = (step) => CORNERS.map(([di, dj, dk]) => step * ((di * N + dj) * N + dk));
  // Evaluates the cell's corners: true where they differ in sign.
  const crossed = (id, offsets) => {
    let inside = 0;
    for (let n = 0; n < 8; n++) if (nodeValue(id + offsets[n]) > 0) inside += 1;
    return inside > 0 && inside < 8;
  };

  // A crossed edge whose neighbouring cell was never split (the field changed faster than the margin assumes)
  // would leave a hole: evaluate such cells too, until every crossed edge has its four cells.
  const closeGaps = (crossing, step) => {
    const offsets = cornerOffsets(step);
    let queue = [...crossing];
    while (queue.length) {
      const grown = [];
      for (const id of queue) {
        const base = [Math.floor(id / (N * N)), Math.floor(id / N) % N, id % N];
        for (const [p, q] of EDGES) {
          if (values[id + offsets[p]] > 0 === values[id + offsets[q]] > 0) continue;
          const low = CORNERS[p].map((d, n) => base[n] + step * d); // the edge's first node
          const along = CORNERS[q].findIndex((d, n) => d !== CORNERS[p][n]);
          const [u, v] = [0, 1, 2].filter((n) => n !== along);
          for (const [du, dv] of [[0, 0], [-1, 0], [0, -1], [-1, -1]]) {
            const cell = low.slice();
            cell[u] += step * du;
            cell[v] += step * dv;
            if (cell.some((n) => n < 0 || n >= cells)) continue;
            const cellId = cell[0] * strides[0] + cell[1] * strides[1] + cell[2];
            if (!crossing.has(cellId) && crossed(cellId, offsets)) {
              crossing.add(cellId);
              grown.push(cellId);
            }
          }
        }
      }
      queue = grown;
    }
  };

  let step = cells / START_CELLS;
  let candidates = [];
  for (let i = 0; i < cells; i += step) for (let j = 0; j < cells; j += step) for (let k = 0; k < cells; k += step) candidates.push((i * N + j) * N + k);
  for (;;) {
    const offsets = cornerOffsets(step);
    const crossing = new Set();
    for (const id of candidates) if (crossed(id, offsets)) crossing.add(id);
    const size = cells / step;
    if (size > DISTANCE_CELLS) closeGaps(crossing, step); // these cells were split for their sign alone
    if (onLevel) onLevel(size);
    if (step === 1 || sizes.includes(size)) yield { cells: size, ...marchingCubes(values, N, axis, h * step, crossing, step), evaluations };
    if (step === 1) return;
    const half = step / 2;
    const centre = half * ((N + 1) * N + 1);
    const reach = 2 * size <= DISTANCE_CELLS ? MARGIN * Math.sqrt(3) * half * h : -1; // MARGIN half-diagonals
    const children = cornerOffsets(half);
    const next = [];
    for (const id of candidates) {
      if (crossing.has(id) || Math.abs(nodeValue(id + centre)) <= reach) for (const offset of children) next.push(id + offset);
    }
    candidates = next;
    step = half;
  }
}

/** The finest mesh of extractSurfaces: {positions, normals, indices, evaluations}. */
export function extractSurface(field, bound, cells) {
  let last = null;
  for (const mesh of extractSurfaces(field, bound, cells)) last = mesh;
  return last;
}

/**
 * Marching cubes over the crossed cells (`crossing`: ids of their first nodes; cells of `step` nodes, `spacing`
 * wide): one vertex per crossed grid edge, shared by the cells around it, its normal the sum of those cells'
 * interpolated gradients there.
 */
function marchingCubes(values, R, axis, spacing, crossing, step) {
  const offsets = CORNERS.map(([di, dj, dk]) => step * ((di * R + dj) * R + dk));
  const edgeVertex = new Map(); // (lower node id) * 3 + axis -> vertex index
  const positions = [];
  const gradients = [];
  const indices = [];
  const corner = new Float64Array(8);
  for (const id of [...crossing].sort((a, b) => a - b)) {
    let config = 0;
    for (let n = 0; n < 8; n++) {
      corner[n] = values[id + offsets[n]];
      if (corner[n] > 0) config |= 1 << n;
    }
    const i = Math.floor(id / (R * R));
    const j = Math.floor(id / R) % R;
    const k = id % R;
    const cellVertex = (e) => {
      const [p, q] = EDGES[e];
      const key = (id + offsets[p]) * 3 + EDGE_AXIS[e];
      const t = corner[p] / (corner[p] - corner[q]);
      const local = CORNERS[p].map((d, n) => (n === EDGE_AXIS[e] ? t : d));
      let vertex = edgeVertex.get(key);
      if (vertex === undefined) {
        vertex = positions.length / 3;
        edgeVertex.set(key, vertex);
        positions.push(axis[i] + local[0] * spacing, axis[j] + local[1] * spacing, axis[k] + local[2] * spacing);
        gradients.push(0, 0, 0);
      }
      const [u, v, w] = local;
      gradients[3 * vertex] += lerp2(corner[1] - corner[0], corner[3] - corner[2], corner[5] - corner[4], corner[7] - corner[6], v, w);
      gradients[3 * vertex + 1] += lerp2(corner[2] - corner[0], corner[3] - corner[1], corner[6] - corner[4], corner[7] - corner[5], u, w);
      gradients[3 * vertex + 2] += lerp2(corner[4] - corner[0], corner[5] - corner[1], corner[6] - corner[2], corner[7] - corner[3], u, v);
      return vertex;
    };
    const vertexOfEdge = new Int32Array(12).fill(-1);
    for (const e of TRIANGLES[config]) {
      if (vertexOfEdge[e] < 0) vertexOfEdge[e] = cellVertex(e);
      indices.push(vertexOfEdge[e]);
    }
  }
  const normals = new Float32Array(gradients.length);
  for (let v = 0; v < gradients.length; v += 3) {
    const length = Math.hypot(gradients[v], gradients[v + 1], gradients[v + 2]) || 1;
    for (let c = 0; c < 3; c++) normals[v + c] = -gradients[v + c] / length; // outward is downhill
  }
  return { positions: Float32Array.from(positions), normals, indices: Uint32Array.from(indices) };
}

function lerp2(a, b, c, d, s, t) {
  return (a * (1 - s) + b * s) * (1 - t) + (c * (1 - s) + d * s) * t;
}
