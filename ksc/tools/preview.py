"""A picture of a decoded file without a browser or a GPU: a small z-buffer rasterizer in numpy.

The camera and the shading are the web viewer's (``web/src/camera.js``,
``web/src/viewer.js``): the same file gives the same silhouette in both, which
the tests check. The scene is the network's normalized frame, y up.
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np

from ksc.errors import KscInputError

CAMERA = {"azimuth": 30.0, "elevation": 20.0, "distance": 4.6, "fov": 35.0}
"""The viewer's default orbit (web/src/camera.js CAMERA): degrees about +y from +z, degrees up, units, vertical degrees."""
BACKGROUND = (255, 255, 255)
SURFACE = (0.55, 0.66, 0.82)
SPHERE = (0.95, 0.55, 0.2)
SHELL_ALPHA = 0.3
"""Opacity of the surface over the key spheres when they are shown (they lie inside it)."""
LIGHT = np.array([0.3, 0.4, 1.0]) / np.linalg.norm([0.3, 0.4, 1.0])
"""Light direction in view space; shade = colour * (0.25 + 0.75 |n . light|), as the viewer's shaders."""
MIN_SIZE, MAX_SIZE = 16, 4096
PREVIEW_RESOLUTION = 128
"""Marching-cubes grid of a preview: a picture of a few hundred pixels shows no finer detail."""


def view_matrix(camera: dict = CAMERA) -> np.ndarray:
    """(4, 4) world-to-view matrix of the orbit ``camera``, looking at the origin, y up (OpenGL's conventions)."""
    a, e = math.radians(camera["azimuth"]), math.radians(camera["elevation"])
    eye = camera["distance"] * np.array([math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)])
    forward = -eye / np.linalg.norm(eye)
    side = np.cross(forward, [0.0, 1.0, 0.0])
    side /= np.linalg.norm(side)
    up = np.cross(side, forward)
    rotation = np.stack([side, up, -forward])
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = -rotation @ eye
    return matrix


def project(points: np.ndarray, size: int, camera: dict = CAMERA) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (N, 2) (x right, y down, pixel centres at .5) and view-space depth (N,) of ``points`` (N, 3)."""
    view = view_matrix(camera)
    p = np.asarray(points, dtype=np.float64) @ view[:3, :3].T + view[:3, 3]
    t = 1.0 / math.tan(math.radians(camera["fov"]) / 2.0)
    depth = -p[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        ndc = t * p[:, :2] / depth[:, None]
    pixels = np.stack([(ndc[:, 0] + 1.0) * size / 2.0, (1.0 - ndc[:, 1]) * size / 2.0], axis=1)
    return pixels, depth


def rasterize(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray, size: int, camera: dict = CAMERA):
    """Front-most fragment per pixel of a triangle mesh.

    Returns ``depth`` (size, size) float64, inf where nothing is drawn, and
    ``normal`` (size, size, 3): the interpolated vertex normals in view space.
    """
    pixels, depth = project(vertices, size, camera)
    view = view_matrix(camera)
    view_normals = np.asarray(normals, dtype=np.float64) @ view[:3, :3].T
    depth_buffer = np.full(size * size, np.inf)
    normal_buffer = np.zeros((size * size, 3))
    faces = np.asarray(faces)
    faces = faces[np.all(depth[faces] > 1e-6, axis=1)]  # in front of the camera
    corners = pixels[faces]  # (F, 3, 2)
    low = np.floor(corners.min(axis=1) - 0.5).astype(np.int64) + 1  # first pixel centre inside the box
    high = np.floor(corners.max(axis=1) - 0.5).astype(np.int64)
    low, high = np.maximum(low, 0), np.minimum(high, size - 1)
    extent = np.max(high - low + 1, axis=1)
    keep = extent > 0
    faces, corners, low, extent = faces[keep], corners[keep], low[keep], extent[keep]
    fragments = []
    span = 1
    while len(faces):
        group = extent <= span
        if group.any():
            fragments.append(_fragments(corners[group], low[group], span, faces[group], depth, view_normals, size))
        faces, corners, low, extent = faces[~group], corners[~group], low[~group], extent[~group]
        span *= 2
    if fragments:
        pixel = np.concatenate([f[0] for f in fragments])
        z = np.concatenate([f[1] for f in fragments])
        n = np.concatenate([f[2] for f in fragments])
        order = np.lexsort((z, pixel))
        pixel, z, n = pixel[order], z[order], n[order]
        first = np.ones(len(pixel), bool)
        first[1:] = pixel[1:] != pixel[:-1]
        depth_buffer[pixel[first]] = z[first]
        normal_buffer[pixel[first]] = n[first]
    return depth_buffer.reshape(size, size), normal_buffer.reshape(size, size, 3)


_BATCH_CANDIDATES = 1 << 22
"""Candidate (triangle, pixel) pairs tested at once: bounds the rasterizer's memory (~200 MB)."""


def _fragments(corners, low, span, faces, depth, normals, size):
    """Pixels, depths and normals of the triangles whose bounding boxes fit in ``span`` x ``span`` pixels."""
    offsets = np.stack(np.meshgrid(np.arange(span), np.arange(span), indexing="ij"), -1).reshape(-1, 2)
    parts = []
    per_batch = max(1, _BATCH_CANDIDATES // len(offsets))
    for start in range(0, len(faces), per_batch):
        c, lo, f = corners[start : start + per_batch], low[start : start + per_batch], faces[start : start + per_batch]
        centres = lo[:, None, :] + offsets[None] + 0.5  # (T, S, 2)
        a, b, d = c[:, 0, None], c[:, 1, None], c[:, 2, None]
        area = _edge(a, b, d)  # (T, 1)
        w0, w1, w2 = _edge(b, d, centres), _edge(d, a, centres), _edge(a, b, centres)
        with np.errstate(divide="ignore", invalid="ignore"):
            w0, w1, w2 = w0 / area, w1 / area, w2 / area
        inside = (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9) & (np.abs(area) > 1e-12)
        inside &= (centres[..., 0] < size) & (centres[..., 1] < size)
        t, s = np.nonzero(inside)
        weights = np.stack([w0[t, s], w1[t, s], w2[t, s]], axis=1)
        corner_depth = depth[f[t]]
        # Perspective-correct: interpolate 1/depth in screen space.
        z = 1.0 / np.sum(weights / corner_depth, axis=1)
        n = np.einsum("ij,ijk->ik", weights * z[:, None] / corner_depth, normals[f[t]])
        pixel = (centres[t, s, 1].astype(np.int64)) * size + centres[t, s, 0].astype(np.int64)
        parts.append((pixel, z, n))
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def _edge(p, q, r):
    """Twice the signed area of (p, q, r), broadcast over leading axes; points are (..., 2)."""
    return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])


def shade(normal: np.ndarray, colour) -> np.ndarray:
    """The viewer's shading of view-space normals (..., 3): ``colour * (0.25 + 0.75 |n . light|)``, floats in [0, 1]."""
    length = np.linalg.norm(normal, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = np.where(length > 0, normal / length, 0.0)
    light = 0.25 + 0.75 * np.abs(unit @ LIGHT)
    return np.asarray(colour)[None, None] * light[..., None]


def unit_sphere(subdivisions: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and faces (F, 3) of a subdivided octahedron on the unit sphere (the viewer's sphere)."""
    vertices = [np.array(v, float) for v in ((1, 0, 0), (0, 1, 0), (0, 0, 1), (-1, 0, 0), (0, -1, 0), (0, 0, -1))]
    faces = [(0, 1, 2), (1, 3, 2), (3, 4, 2), (4, 0, 2), (1, 0, 5), (3, 1, 5), (4, 3, 5), (0, 4, 5)]
    for _ in range(subdivisions):
        middle: dict = {}
        finer = []
        for a, b, c in faces:
            ab, bc, ca = (_midpoint(vertices, middle, i, j) for i, j in ((a, b), (b, c), (c, a)))
            finer += [(a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca)]
        faces = finer
    return np.array(vertices), np.array(faces)


def _midpoint(vertices: list, middle: dict, i: int, j: int) -> int:
    """Index of the unit vector halfway between vertices i and j, appended to ``vertices`` the first time."""
    key = (min(i, j), max(i, j))
    if key not in middle:
        v = vertices[i] + vertices[j]
        vertices.append(v / np.linalg.norm(v))
        middle[key] = len(vertices) - 1
    return middle[key]


def render(
    vertices: np.ndarray,
    faces: np.ndarray,
    normals: np.ndarray,
    size: int = 512,
    spheres: np.ndarray | None = None,
    camera: dict = CAMERA,
) -> np.ndarray:
    """An RGB picture (size, size, 3) uint8 of a mesh in the normalized frame, with its key spheres (M, 4) if given."""
    if not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise KscInputError(f"size must be an integer in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    depth, normal = rasterize(vertices, faces, normals, size, camera)
    image = np.empty((size, size, 3))
    image[:] = np.asarray(BACKGROUND) / 255.0
    surface = np.isfinite(depth)
    if spheres is not None and len(spheres):
        shape_vertices, shape_faces = unit_sphere()
        count = len(shape_vertices)
        centres, radii = np.asarray(spheres)[:, :3], np.asarray(spheres)[:, 3]
        ball_vertices = (centres[:, None] + radii[:, None, None] * shape_vertices[None]).reshape(-1, 3)
        ball_faces = (shape_faces[None] + count * np.arange(len(spheres))[:, None, None]).reshape(-1, 3)
        ball_depth, ball_normal = rasterize(ball_vertices, ball_faces, np.tile(shape_vertices, (len(spheres), 1)), size, camera)
        balls = np.isfinite(ball_depth)
        image[balls] = shade(ball_normal, SPHERE)[balls]
        image[surface] = SHELL_ALPHA * shade(normal, SURFACE)[surface] + (1 - SHELL_ALPHA) * image[surface]
    else:
        image[surface] = shade(normal, SURFACE)[surface]
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def preview(data: bytes, size: int = 512, spheres: bool = False, resolution: int = PREVIEW_RESOLUTION) -> np.ndarray:
    """A picture (size, size, 3) uint8 of the shape a ``.ksc`` file decodes to, seen by the viewer's default camera."""
    from ksc.decoding.pipeline import decode

    if not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:  # before the decode, which takes a second
        raise KscInputError(f"size must be an integer in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    decoded = decode(data, resolution)
    network = decoded.network
    vertices = network.transform.to_unit(decoded.vertices)
    rows = np.concatenate([network.field.centres, network.field.radii[:, None]], axis=1) if spheres else None
    return render(vertices, decoded.faces, decoded.normals, size, rows)


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB image (H, W, 3) uint8 as PNG bytes (8-bit truecolour, no filtering)."""
    height, width, _ = image.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, width * 3)], axis=1)

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)) + chunk(b"IEND", b"")
