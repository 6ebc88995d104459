// Holes (format 5.1): the input's boundary loops, stored as a few points each, and the cut that opens them in
// the extracted surface, as ksc/mesh/holes.py does (the same rule: a triangle whose centroid lies inside a loop's
// polygon, seen along the normal of the loop's best-fitting plane, and within the loop's own distance from that
// plane plus THICKNESS_CELLS grid cells of it, is part of the cap the network closed the hole with).

const LEVELS = 255;
const THICKNESS_CELLS = 2;

/** The loops of a file's `holes`, each {centre, u, v, normal, thickness, polygon: [[x, y], ...]}, normalized frame. */
export function decodeHoles(holes = [], bound) {
  return holes.map((loop) => {
    const points = [];
    for (let i = 0; i < loop.length; i += 3) points.push([0, 1, 2].map((c) => (loop[i + c] / LEVELS) * 2 * bound - bound));
    const centre = [0, 1, 2].map((c) => points.reduce((sum, p) => sum + p[c], 0) / points.length);
    const [u, v, normal] = principalAxes(points.map((p) => p.map((x, c) => x - centre[c])));
    const offset = (p) => p.map((x, c) => x - centre[c]);
    const thickness = Math.max(...points.map((p) => Math.abs(dot(offset(p), normal))));
    const polygon = points.map((p) => [dot(offset(p), u), dot(offset(p), v)]);
    return { centre, u, v, normal, thickness, polygon };
  });
}

/** `indices` (3F) without the triangles of the loops' caps; `cell` is the grid's node spacing. */
export function cutHoles(positions, indices, loops, cell) {
  if (!loops.length) return indices;
  const kept = [];
  const p = [0, 0, 0];
  for (let f = 0; f < indices.length; f += 3) {
    for (let c = 0; c < 3; c++) p[c] = (positions[3 * indices[f] + c] + positions[3 * indices[f + 1] + c] + positions[3 * indices[f + 2] + c]) / 3;
    const cap = loops.some(({ centre, u, v, normal, thickness, polygon }) => {
      const d = [p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]];
      return Math.abs(dot(d, normal)) <= thickness + THICKNESS_CELLS * cell && insidePolygon(polygon, dot(d, u), dot(d, v));
    });
    if (!cap) kept.push(indices[f], indices[f + 1], indices[f + 2]);
  }
  return Uint32Array.from(kept);
}

/** Drops the vertices no triangle uses (and renumbers `indices`); positions and normals are 3 per vertex. */
export function compact({ positions, normals, indices }) {
  const map = new Int32Array(positions.length / 3).fill(-1);
  let count = 0;
  for (const i of indices) if (map[i] < 0) map[i] = count++;
  const order = new Int32Array(count);
  map.forEach((to, from) => {
    if (to >= 0) order[to] = from;
  });
  const pick = (array) => Float32Array.from({ length: 3 * count }, (_, k) => array[3 * order[Math.floor(k / 3)] + (k % 3)]);
  return { positions: pick(positions), normals: pick(normals), indices: indices.map((i) => map[i]) };
}

function insidePolygon(polygon, x, y) {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [ax, ay] = polygon[i];
    const [bx, by] = polygon[j];
    if (ay > y !== by > y && x < ax + ((y - ay) * (bx - ax)) / (by - ay)) inside = !inside;
  }
  return inside;
}

const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

/** The eigenvectors of the points' scatter matrix, largest first (Jacobi rotations on the 3x3 matrix). */
function principalAxes(points) {
  const a = [0, 1, 2].map((r) => [0, 1, 2].map((c) => points.reduce((sum, p) => sum + p[r] * p[c], 0)));
  const vectors = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let p = 0; p < 3; p++) for (let q = p + 1; q < 3; q++) off += a[p][q] * a[p][q];
    if (off < 1e-30) break;
    for (let p = 0; p < 3; p++) {
      for (let q = p + 1; q < 3; q++) {
        if (Math.abs(a[p][q]) < 1e-300) continue;
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cos = 1 / Math.sqrt(t * t + 1);
        const sin = t * cos;
        for (let k = 0; k < 3; k++) {
          const [akp, akq] = [a[k][p], a[k][q]];
          a[k][p] = cos * akp - sin * akq;
          a[k][q] = sin * akp + cos * akq;
        }
        for (let k = 0; k < 3; k++) {
          const [apk, aqk] = [a[p][k], a[q][k]];
          a[p][k] = cos * apk - sin * aqk;
          a[q][k] = sin * apk + cos * aqk;
        }
        for (let k = 0; k < 3; k++) {
          const [vkp, vkq] = [vectors[k][p], vectors[k][q]];
          vectors[k][p] = cos * vkp - sin * vkq;
          vectors[k][q] = sin * vkp + cos * vkq;
        }
      }
    }
  }
  const order = [0, 1, 2].sort((i, j) => a[j][j] - a[i][i]);
  return order.map((i) => [vectors[0][i], vectors[1][i], vectors[2][i]]);
}
