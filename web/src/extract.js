// The zero level of a field as a triangle mesh, in the browser: the network evaluated only near the surface,
// coarse to fine (ksc/octree.py's idea), then surface nets (one vertex per grid cell the surface crosses, one
// quad per grid edge it crosses). No lookup tables; vertex normals come from the field's own values around
// each vertex. Everything is in the normalized frame, positive inside.

import { START_CELLS } from "./limits.js";

const MARGIN = 1.5; // a cell whose centre lies further than MARGIN x its half-diagonal from the zero level is empty
const DISTANCE_CELLS = 32; // down to cells this coarse (per axis) the distance test splits cells; finer, only signs

const CORNERS = [
  [0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1],
];
const EDGES = [
  [0, 1], [2, 3], [4, 5], [6, 7], [0, 2], [1, 3], [4, 6], [5, 7], [0, 4], [1, 5], [2, 6], [3, 7],
];

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
    if (step === 1 || sizes.includes(size)) yield { cells: size, ...surfaceNets(values, N, axis, h * step, crossing, step), evaluations };
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
 * One vertex per crossed cell (`crossing`: ids of their first nodes; cells of `step` nodes, `spacing` wide),
 * one quad per crossed grid edge.
 */
function surfaceNets(values, R, axis, spacing, crossing, step) {
  const offsets = CORNERS.map(([di, dj, dk]) => step * ((di * R + dj) * R + dk));
  const cellVertex = new Map();
  const positions = [];
  const normals = [];
  const corner = new Float64Array(8);
  for (const id of [...crossing].sort((a, b) => a - b)) {
    const i = Math.floor(id / (R * R));
    const j = Math.floor(id / R) % R;
    const k = id % R;
    for (let n = 0; n < 8; n++) corner[n] = values[id + offsets[n]];
    let sx = 0;
    let sy = 0;
    let sz = 0;
    let crossings = 0;
    for (const [p, q] of EDGES) {
      if (corner[p] > 0 === corner[q] > 0) continue;
      const t = corner[p] / (corner[p] - corner[q]);
      sx += CORNERS[p][0] + t * (CORNERS[q][0] - CORNERS[p][0]);
      sy += CORNERS[p][1] + t * (CORNERS[q][1] - CORNERS[p][1]);
      sz += CORNERS[p][2] + t * (CORNERS[q][2] - CORNERS[p][2]);
      crossings += 1;
    }
    const [u, v, w] = [sx / crossings, sy / crossings, sz / crossings];
    // Gradient of the trilinear interpolant of the corner values at (u, v, w); outward is downhill.
    const gx = lerp2(corner[1] - corner[0], corner[3] - corner[2], corner[5] - corner[4], corner[7] - corner[6], v, w);
    const gy = lerp2(corner[2] - corner[0], corner[3] - corner[1], corner[6] - corner[4], corner[7] - corner[5], u, w);
    const gz = lerp2(corner[4] - corner[0], corner[5] - corner[1], corner[6] - corner[2], corner[7] - corner[3], u, v);
    const length = Math.hypot(gx, gy, gz) || 1;
    cellVertex.set(id, positions.length / 3);
    positions.push(axis[i] + u * spacing, axis[j] + v * spacing, axis[k] + w * spacing);
    normals.push(-gx / length, -gy / length, -gz / length);
  }
  const indices = [];
  const quad = (v0, v1, v2, v3, flip) => {
    if (v0 === undefined || v1 === undefined || v2 === undefined || v3 === undefined) return; // a cell outside the grid
    if (flip) indices.push(v0, v2, v1, v0, v3, v2);
    else indices.push(v0, v1, v2, v0, v2, v3);
  };
  const [X, Y, Z] = [step * R * R, step * R, step];
  const at = (cell) => cellVertex.get(cell);
  for (const [cell] of cellVertex) {
    const inside = values[cell] > 0;
    const [i, j, k] = [Math.floor(cell / (R * R)), Math.floor(cell / R) % R, cell % R];
    // The x-edge from the cell's first node is shared by the cells at -Y, -Z and -Y-Z; likewise for y and z.
    if (j && k && inside !== values[cell + X] > 0) quad(at(cell - Y - Z), at(cell - Z), at(cell), at(cell - Y), !inside);
    if (i && k && inside !== values[cell + Y] > 0) quad(at(cell - X - Z), at(cell - X), at(cell), at(cell - Z), !inside);
    if (i && j && inside !== values[cell + Z] > 0) quad(at(cell - X - Y), at(cell - Y), at(cell), at(cell - X), !inside);
  }
  return { positions: Float32Array.from(positions), normals: Float32Array.from(normals), indices: Uint32Array.from(indices) };
}

function lerp2(a, b, c, d, s, t) {
  return (a * (1 - s) + b * s) * (1 - t) + (c * (1 - s) + d * s) * t;
}
