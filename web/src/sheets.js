// Sheets (format 5.1): a surface with no inside is stored as the thin shell of half-thickness t around it, and
// the decoder takes that shell back to one side, as ksc/mesh/sheets.py does (the same rule: every vertex moves
// by t against its outward normal; a triangle that then no longer faces its own way with KEPT_AREA of its area
// is folded, and folded triangles in patches of over MAX_TEAR_FACES are the rim and are dropped; of the pieces left, largest first, one whose vertices lie for more than
// TWIN_SHARE in cells of edge t next to a kept piece's is the other side of that piece and is dropped).

const CELLS_ACROSS = 2.4;
const KEPT_AREA = 0.5;
const MAX_TEAR_FACES = 24;
const TWIN_SHARE = 0.5;
const OFFSET = 1 << 16; // cell indices, shifted to be positive, 17 bits per axis (a key stays an exact double)

/** The fewest grid cells per axis over [-bound, bound] that resolve a shell of half-thickness `thickness`. */
export function minCells(thickness, bound) {
  return Math.ceil((2 * bound * CELLS_ACROSS) / (2 * thickness));
}

/**
 * One side of the shell {positions, normals (outward), indices}, moved onto the sheet: {positions, normals,
 * indices}, its normals those of its triangles.
 */
export function collapseShell({ positions, normals, indices }, thickness) {
  const moved = Float64Array.from(positions, (x, k) => x - thickness * normals[k]);
  const folded = [];
  const before = [0, 0, 0];
  const after = [0, 0, 0];
  for (let f = 0; f < indices.length; f += 3) {
    areaVector(positions, indices, f, before);
    areaVector(moved, indices, f, after);
    const size = Math.hypot(...before);
    const facing = (after[0] * before[0] + after[1] * before[1] + after[2] * before[2]) / Math.max(size, 1e-300);
    if (!(facing > KEPT_AREA * size)) folded.push(f);
  }
  // A few folded triangles inside a side are a sliver's, not the rim's: they stay.
  const foldedLabels = faceComponents(folded.flatMap((f) => [indices[f], indices[f + 1], indices[f + 2]]), positions.length / 3);
  const foldedSizes = new Map();
  for (const label of foldedLabels) foldedSizes.set(label, (foldedSizes.get(label) ?? 0) + 1);
  const rim = new Set(folded.filter((f, k) => foldedSizes.get(foldedLabels[k]) > MAX_TEAR_FACES));
  const kept = [];
  for (let f = 0; f < indices.length; f += 3) if (!rim.has(f)) kept.push(indices[f], indices[f + 1], indices[f + 2]);
  const labels = faceComponents(kept, positions.length / 3);
  let pieces = 0;
  for (const label of labels) pieces = Math.max(pieces, label + 1);
  const area = new Float64Array(pieces);
  for (let f = 0; f < kept.length; f += 3) area[labels[f / 3]] += Math.hypot(...areaVector(moved, kept, f, after));
  const members = Array.from({ length: pieces }, () => new Set());
  for (let f = 0; f < kept.length; f += 3) for (let c = 0; c < 3; c++) members[labels[f / 3]].add(kept[f + c]);
  const occupied = new Set();
  const keep = new Uint8Array(pieces);
  const order = [...area.keys()].sort((a, b) => area[b] - area[a] || a - b);
  for (const piece of order) {
    const cells = [...members[piece]].map((v) => cellOf(moved, v, thickness));
    if (occupied.size && cells.filter((key) => occupied.has(key)).length > TWIN_SHARE * cells.length) continue;
    keep[piece] = 1;
    for (const key of cells) for (const step of NEIGHBOURS) occupied.add(key + step);
  }
  const faces = [];
  for (let f = 0; f < kept.length; f += 3) if (keep[labels[f / 3]]) faces.push(kept[f], kept[f + 1], kept[f + 2]);
  return oneSide(moved, faces);
}

const NEIGHBOURS = [];
for (const x of [-1, 0, 1]) for (const y of [-1, 0, 1]) for (const z of [-1, 0, 1]) NEIGHBOURS.push((x * 2 ** 17 + y) * 2 ** 17 + z);

function cellOf(points, v, size) {
  const [x, y, z] = [0, 1, 2].map((c) => Math.floor(points[3 * v + c] / size) + OFFSET);
  return (x * 2 ** 17 + y) * 2 ** 17 + z;
}

function areaVector(points, indices, f, out) {
  const [a, b, c] = [indices[f], indices[f + 1], indices[f + 2]].map((v) => 3 * v);
  const u = [0, 1, 2].map((k) => points[b + k] - points[a + k]);
  const w = [0, 1, 2].map((k) => points[c + k] - points[a + k]);
  out[0] = u[1] * w[2] - u[2] * w[1];
  out[1] = u[2] * w[0] - u[0] * w[2];
  out[2] = u[0] * w[1] - u[1] * w[0];
  return out;
}

/** The piece of each triangle of `indices` (3F): triangles that share an edge are in the same piece. */
function faceComponents(indices, vertexCount) {
  const count = indices.length / 3;
  const parent = Int32Array.from({ length: count }, (_, i) => i);
  const root = (i) => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]];
    return i;
  };
  const firstFace = new Map();
  for (let f = 0; f < count; f++) {
    for (let c = 0; c < 3; c++) {
      const [a, b] = [indices[3 * f + c], indices[3 * f + ((c + 1) % 3)]];
      const key = Math.min(a, b) * vertexCount + Math.max(a, b);
      const other = firstFace.get(key);
      if (other === undefined) firstFace.set(key, f);
      else {
        const [p, q] = [root(f), root(other)];
        if (p !== q) parent[Math.max(p, q)] = Math.min(p, q);
      }
    }
  }
  const number = new Map();
  return Int32Array.from({ length: count }, (_, f) => {
    const r = root(f);
    if (!number.has(r)) number.set(r, number.size);
    return number.get(r);
  });
}

/** The vertices `faces` use (in order of first use), moved, with the area-weighted normals of their triangles. */
function oneSide(moved, faces) {
  const map = new Map();
  const indices = Uint32Array.from(faces, (v) => {
    if (!map.has(v)) map.set(v, map.size);
    return map.get(v);
  });
  const positions = new Float32Array(3 * map.size);
  for (const [from, to] of map) for (let c = 0; c < 3; c++) positions[3 * to + c] = moved[3 * from + c];
  const sums = new Float64Array(3 * map.size);
  const area = [0, 0, 0];
  for (let f = 0; f < indices.length; f += 3) {
    areaVector(positions, indices, f, area);
    for (let c = 0; c < 3; c++) for (let k = 0; k < 3; k++) sums[3 * indices[f + c] + k] += area[k];
  }
  const normals = new Float32Array(3 * map.size);
  for (let v = 0; v < map.size; v++) {
    const length = Math.hypot(sums[3 * v], sums[3 * v + 1], sums[3 * v + 2]) || 1;
    for (let k = 0; k < 3; k++) normals[3 * v + k] = sums[3 * v + k] / length;
  }
  return { positions, normals, indices };
}
