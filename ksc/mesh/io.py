"""Reading meshes with clear errors, writing them (with vertex normals), and writing files atomically.

The writers for PLY, OBJ, OFF and STL are numpy only, so that a decode need
not import trimesh (~0.5 s); GLB goes through trimesh.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ksc.errors import KscInputError

MESH_INPUTS = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")
MESH_OUTPUTS = (".ply", ".obj", ".stl", ".glb", ".off")


def load_mesh(path: str | os.PathLike):
    """Read a triangle mesh (all geometry of a scene merged).

    Raises KscInputError when the file is missing, of an unsupported type,
    unreadable, holds no triangles, or has non-finite coordinates.
    """
    import trimesh

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_INPUTS:
        raise KscInputError(f"{path}: unsupported mesh format {suffix or '(none)'!r}; use one of {', '.join(MESH_INPUTS)}")
    if not path.is_file():
        raise KscInputError(f"{path}: no such file")
    try:
        loaded = trimesh.load(path, force="mesh", process=False)
    except Exception as error:  # trimesh's loaders raise many unrelated types
        raise KscInputError(f"{path}: cannot read mesh ({type(error).__name__}: {error})") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise KscInputError(f"{path}: file holds no triangles (a point cloud or an empty mesh?)")
    return check_mesh(loaded, f"{path}: ")


def check_mesh(mesh, where: str = ""):
    """A clean copy of a ``trimesh.Trimesh`` (float64 vertices, int64 faces), or KscInputError saying what is wrong.

    Refused: no triangles, face indices out of range, NaN or infinite
    coordinates, sizes that overflow, zero surface area.
    """
    import trimesh

    if not isinstance(mesh, trimesh.Trimesh):
        raise KscInputError(f"{where}expected a trimesh.Trimesh or a path, got {type(mesh).__name__}")
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if len(faces) == 0:
        raise KscInputError(f"{where}mesh holds no triangles")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise KscInputError(f"{where}mesh has face indices outside its {len(vertices)} vertices")
    if not np.all(np.isfinite(vertices)):
        raise KscInputError(f"{where}mesh has NaN or infinite vertex coordinates")
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    with np.errstate(over="ignore", invalid="ignore"):
        measurable = np.all(np.isfinite(np.ptp(vertices, axis=0))) and np.isfinite(mesh.area)
    if not measurable:
        raise KscInputError(f"{where}vertex coordinates are too large: sizes and areas overflow float64")
    if not mesh.area > 0.0:
        raise KscInputError(f"{where}mesh has zero surface area (degenerate triangles)")
    return mesh


def consistently_wound(mesh):
    """``mesh`` with every face wound like its neighbours, and how many faces were flipped.

    The training signs come from the generalized winding number, which a mesh
    with some faces flipped (common in Thingi10K) cancels locally: the samples
    near those faces get the wrong sign, and the file describes another shape.
    Consistency is judged on the mesh welded by position, so that a triangle
    soup (every face with its own vertices, as OBJ exporters write them) is
    judged too. A consistent mesh is returned as it is (same object, same
    bytes); otherwise the welded mesh has its faces flipped to agree across
    every edge (trimesh.repair.fix_winding) and, when it is closed, each
    connected part that then points inwards is turned out: the winding number
    of overlapping outward parts is their union (cavities of such a mesh are
    filled: its own orientation, which told them, was the broken part).
    """
    import trimesh

    welded = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, process=True)  # merges, keeps face order
    if len(welded.faces) == len(mesh.faces) and welded.is_winding_consistent:
        return mesh, 0
    trimesh.repair.fix_winding(welded)
    if welded.is_watertight:
        _turn_parts_outwards(welded)
    if len(welded.faces) != len(mesh.faces):  # merging dropped faces: no face-by-face count
        return welded, len(mesh.faces)
    return welded, int(np.count_nonzero((welded.face_normals * mesh.face_normals).sum(axis=1) < 0))


def _turn_parts_outwards(mesh) -> None:
    """Reverse, in place, the faces of every connected part of the closed ``mesh`` whose signed volume is negative."""
    import trimesh

    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    corners = mesh.vertices[mesh.faces]
    volumes = np.bincount(labels, weights=np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])))
    inward = volumes[labels] < 0
    if inward.any():
        faces = mesh.faces.copy()
        faces[inward] = faces[inward][:, ::-1]
        mesh.faces = faces


def check_output_format(path: str | os.PathLike) -> str:
    """The lower-case extension of ``path`` if ksc can write it, else KscInputError."""
    suffix = Path(path).suffix.lower()
    if suffix not in MESH_OUTPUTS:
        raise KscInputError(f"{path}: unsupported output format {suffix or '(none)'!r}; use one of {', '.join(MESH_OUTPUTS)}")
    return suffix


def mesh_bytes(mesh, suffix: str) -> bytes:
    """A ``trimesh.Trimesh`` serialized in the format named by ``suffix`` ('.ply', '.obj', ...)."""
    suffix = check_output_format(f"mesh{suffix}")
    data = mesh.export(file_type=suffix[1:])
    return data.encode() if isinstance(data, str) else data


def serialize(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray | None, suffix: str) -> bytes:
    """A mesh of vertices (V, 3), faces (F, 3) and unit vertex normals (V, 3) or None in the format of ``suffix``.

    PLY (binary), OBJ and GLB carry the vertex normals; OFF and STL cannot
    (STL stores each facet's own normal). Positions are float32 where that
    keeps them within 1e-6 of the mesh's size, else float64 (PLY).
    """
    suffix = check_output_format(f"mesh{suffix}")
    vertices, faces = np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)
    if suffix == ".ply":
        return _ply(vertices, faces, normals)
    if suffix == ".obj":
        return _obj(vertices, faces, normals)
    if suffix == ".off":
        return _text_lines(["OFF", f"{len(vertices)} {len(faces)} 0"], vertices, "", faces, "3 ", zero_based=True)
    if suffix == ".stl":
        return _stl(vertices, faces)
    import trimesh

    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, vertex_normals=normals, process=False)
    return trimesh.exchange.gltf.export_glb(trimesh.Scene(mesh), include_normals=normals is not None)


def _position_type(vertices: np.ndarray) -> str:
    extent = float(np.ptp(vertices, axis=0).max()) if len(vertices) else 0.0
    rounding = np.abs(vertices.astype(np.float32).astype(np.float64) - vertices).max(initial=0.0)
    return "float" if rounding <= 1e-6 * max(extent, 1e-30) else "double"


def _ply(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray | None) -> bytes:
    position = _position_type(vertices)
    fields = [(axis, "<f4" if position == "float" else "<f8") for axis in "xyz"]
    if normals is not None:
        fields += [(name, "<f4") for name in ("nx", "ny", "nz")]
    rows = np.empty(len(vertices), dtype=fields)
    for k, axis in enumerate("xyz"):
        rows[axis] = vertices[:, k]
    if normals is not None:
        for k, name in enumerate(("nx", "ny", "nz")):
            rows[name] = normals[:, k]
    triangles = np.empty(len(faces), dtype=[("count", "u1"), ("index", "<i4", (3,))])
    triangles["count"], triangles["index"] = 3, faces
    header = ["ply", "format binary_little_endian 1.0", "comment written by ksc", f"element vertex {len(vertices)}"]
    header += [f"property {position} {axis}" for axis in "xyz"]
    if normals is not None:
        header += [f"property float {name}" for name in ("nx", "ny", "nz")]
    header += [f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    return ("\n".join(header) + "\n").encode() + rows.tobytes() + triangles.tobytes()


def _obj(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray | None) -> bytes:
    if normals is None:
        return _text_lines(["# written by ksc"], vertices, "v ", faces, "f ", zero_based=False)
    lines = ["# written by ksc"]
    lines += [f"v {x:.8g} {y:.8g} {z:.8g}" for x, y, z in vertices.tolist()]
    lines += [f"vn {x:.6g} {y:.6g} {z:.6g}" for x, y, z in normals.tolist()]
    lines += [f"f {a}//{a} {b}//{b} {c}//{c}" for a, b, c in (faces + 1).tolist()]
    return ("\n".join(lines) + "\n").encode()


def _text_lines(head: list[str], vertices: np.ndarray, vertex_prefix: str, faces, face_prefix: str, zero_based: bool) -> bytes:
    lines = list(head)
    lines += [f"{vertex_prefix}{x:.8g} {y:.8g} {z:.8g}" for x, y, z in vertices.tolist()]
    offset = 0 if zero_based else 1
    lines += [f"{face_prefix}{a} {b} {c}" for a, b, c in (faces + offset).tolist()]
    return ("\n".join(lines) + "\n").encode()


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit normals (F, 3) of the triangles, by the right-hand rule; zero for degenerate ones."""
    corners = vertices[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)


def _stl(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    corners = vertices[faces]
    normals = face_normals(vertices, faces)
    rows = np.zeros(len(faces), dtype=[("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
    rows["normal"], rows["corners"] = normals, corners
    header = b"binary STL written by ksc".ljust(80, b" ")
    return header + np.uint32(len(faces)).tobytes() + rows.tobytes()


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    A reader never sees a partial file, and an existing file is replaced only
    by a complete one.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise KscInputError(f"{path}: directory {directory} does not exist")
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file private (0600); give it the mode a plain open() would.
        os.fchmod(fd, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
