// The zero level of a field as a triangle mesh, in the browser: the network evaluated only near the surface,
// coarse to fine (ksc/octree.py's idea), then surface nets (one vertex per grid cell the surface crosses, one
// quad per grid edge it crosses). No lookup tables; vertex normals come from the field's own values around
// each vertex. Everything is in the normalized frame, positive inside.

const START_CELLS = 16; // cells per axis of the first, fully evaluated grid
const MARGIN = 1.5; // a cell whose centre lies further than MARGIN x its half-diagonal from the zero level is empty

/**
 * Extract the surface of `field` (a SphereField) over [-bound, bound]^3 on a grid of `cells` cells per axis
 * (START_CELLS times a power of two). Cells are split, coarse to fine, where their corners differ in sign or lie
 * within MARGIN diagonals of the zero level (a field that is a distance changes by at most that across a cell).
 * Returns {positions, normals: Float32Array (3V), indices: Uint32Array (3F), evaluations}.
 */
export function extractSurface(field, bound, cells) {
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
  let evaluations = 0;

  const nodeValue = (id) => {
    const known = values[id];
    if (known === known) return known; // not NaN
    const i = Math.floor(id / (N * N));
    const j = Math.floor(id / N) % N;
    const k = id % N;
    const a = i * Q;
    const b = j * Q;
    const c = k * Q;
    const tx = tables[0];
    const ty = tables[1];
    const tz = tables[2];
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
  let step = cells / START_CELLS;
  let candidates = [];
  for (let i = 0; i < cells; i += step) for (let j = 0; j < cells; j += step) for (let k = 0; k < cells; k += step) candidates.push((i * N + j) * N + k);
  const crossing = new Set();
  while (step >= 1) {
    const offsets = cornerOffsets(step);
    const next = [];
    const half = step / 2;
    const centre = half * ((N + 1) * N + 1);
    const reach = MARGIN * Math.sqrt(3) * half * h; // the half-diagonal
    for (const id of candidates) {
      if (step === 1) {
        if (crossed(id, offsets)) crossing.add(id);
      } else if (Math.abs(nodeValue(id + centre)) <= reach || crossed(id, offsets)) {
        for (const offset of cornerOffsets(half)) next.push(id + offset);
      }
    }
    candidates = next;
    step /= 2;
  }

  // A crossed edge whose neighbouring cell was never split (the field changed faster than the margin assumes)
  // would leave a hole: evaluate such cells too, until every crossed edge has its four cells.
  const unit = cornerOffsets(1);
  const strides = [N * N, N, 1];
  let queue = [...crossing];
  while (queue.length) {
    const grown = [];
    for (const id of queue) {
      const base = [Math.floor(id / (N * N)), Math.floor(id / N) % N, id % N];
      for (const [p, q] of EDGES) {
        if (values[id + unit[p]] > 0 === values[id + unit[q]] > 0) continue;
        const low = CORNERS[p].map((d, n) => base[n] + d); // the edge's first node
        const along = CORNERS[q].findIndex((d, n) => d !== CORNERS[p][n]);
        const [u, v] = [0, 1, 2].filter((n) => n !== along);
        for (const [du, dv] of [[0, 0], [-1, 0], [0, -1], [-1, -1]]) {
          const cell = low.slice();
          cell[u] += du;
          cell[v] += dv;
          if (cell.some((n) => n < 0 || n >= cells)) continue;
          const cellId = cell[0] * strides[0] + cell[1] * strides[1] + cell[2];
          if (crossing.has(cellId)) continue;
          if (crossed(cellId, unit)) {
            crossing.add(cellId);
            grown.push(cellId);
          }
        }
      }
    }
    queue = grown;
  }
  return { ...surfaceNets(values, N, axis, h, crossing), evaluations };
}

const CORNERS = [
  [0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1],
];
const EDGES = [
  [0, 1], [2, 3], [4, 5], [6, 7], [0, 2], [1, 3], [4, 6], [5, 7], [0, 4], [1, 5], [2, 6], [3, 7],
];

/** One vertex per crossed cell (`crossing`: ids of their first nodes), one quad per crossed grid edge. */
function surfaceNets(values, R, axis, h, crossing) {
  const node = (i, j, k) => (i * R + j) * R + k;
  const cellVertex = new Map();
  const positions = [];
  const normals = [];
  const corner = new Float64Array(8);
  for (const id of [...crossing].sort((a, b) => a - b)) {
    const i = Math.floor(id / (R * R));
    const j = Math.floor(id / R) % R;
    const k = id % R;
    for (let n = 0; n < 8; n++) {
      const [di, dj, dk] = CORNERS[n];
      corner[n] = values[node(i + di, j + dj, k + dk)];
    }
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
    positions.push(axis[i] + u * h, axis[j] + v * h, axis[k] + w * h);
    normals.push(-gx / length, -gy / length, -gz / length);
  }
  const indices = [];
  const quad = (v0, v1, v2, v3, flip) => {
    if (v0 === undefined || v1 === undefined || v2 === undefined || v3 === undefined) return; // a cell outside the band
    if (flip) indices.push(v0, v2, v1, v0, v3, v2);
    else indices.push(v0, v1, v2, v0, v2, v3);
  };
  const at = (i, j, k) => cellVertex.get((i * R + j) * R + k);
  for (const [cell] of cellVertex) {
    const i = Math.floor(cell / (R * R));
    const j = Math.floor(cell / R) % R;
    const k = cell % R;
    const here = values[node(i, j, k)] > 0;
    // The x-edge from node (i, j, k) is shared by cells (i, j-1..j, k-1..k); likewise for y and z.
    if (j > 0 && k > 0 && here !== values[node(i + 1, j, k)] > 0) {
      quad(at(i, j - 1, k - 1), at(i, j, k - 1), at(i, j, k), at(i, j - 1, k), !here);
    }
    if (i > 0 && k > 0 && here !== values[node(i, j + 1, k)] > 0) {
      quad(at(i - 1, j, k - 1), at(i - 1, j, k), at(i, j, k), at(i, j, k - 1), !here);
    }
    if (i > 0 && j > 0 && here !== values[node(i, j, k + 1)] > 0) {
      quad(at(i - 1, j - 1, k), at(i, j - 1, k), at(i, j, k), at(i - 1, j, k), !here);
    }
  }
  return { positions: Float32Array.from(positions), normals: Float32Array.from(normals), indices: Uint32Array.from(indices) };
}

function lerp2(a, b, c, d, s, t) {
  return (a * (1 - s) + b * s) * (1 - t) + (c * (1 - s) + d * s) * t;
}
