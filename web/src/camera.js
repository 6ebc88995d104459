// The camera both views of a file share: the page's WebGL2 view and `ksc preview` (ksc/tools/preview.py) use the same
// numbers, so a picture of one can be compared with the other. The scene is the network's normalized frame
// (the shape fills [-1, 1] along its longest axis), y up; the camera orbits the origin.

export const CAMERA = {
  azimuth: 30, // degrees about +y, from +z towards +x
  elevation: 20, // degrees above the xz plane
  distance: 4.6, // from the origin, in normalized units
  fov: 35, // vertical field of view, degrees
  near: 0.05,
  far: 50,
};

/** The eye position for an orbit (angles in degrees). */
export function eyeOf({ azimuth, elevation, distance }) {
  const a = (azimuth * Math.PI) / 180;
  const e = (elevation * Math.PI) / 180;
  return [distance * Math.cos(e) * Math.sin(a), distance * Math.sin(e), distance * Math.cos(e) * Math.cos(a)];
}

/** Column-major 4x4 view matrix looking from `eye` at the origin, y up. */
export function viewMatrix(eye) {
  const f = normalize([-eye[0], -eye[1], -eye[2]]);
  const s = normalize(cross(f, [0, 1, 0]));
  const u = cross(s, f);
  return [
    s[0], u[0], -f[0], 0,
    s[1], u[1], -f[1], 0,
    s[2], u[2], -f[2], 0,
    -dot(s, eye), -dot(u, eye), dot(f, eye), 1,
  ];
}

/** Column-major 4x4 perspective projection (OpenGL clip space). */
export function projectionMatrix(fov, aspect, near, far) {
  const t = 1 / Math.tan((fov * Math.PI) / 360);
  return [t / aspect, 0, 0, 0, 0, t, 0, 0, 0, 0, (far + near) / (near - far), -1, 0, 0, (2 * far * near) / (near - far), 0];
}

function cross(a, b) {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

function dot(a, b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

function normalize(v) {
  const n = Math.hypot(v[0], v[1], v[2]) || 1;
  return [v[0] / n, v[1] / n, v[2] / n];
}
