"""Reading meshes with clear errors, and writing files atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import trimesh

from ksc.errors import KscInputError

MESH_INPUTS = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")
MESH_OUTPUTS = (".ply", ".obj", ".stl", ".glb", ".off")


def load_mesh(path: str | os.PathLike) -> trimesh.Trimesh:
    """Read a triangle mesh (all geometry of a scene merged).

    Raises KscInputError when the file is missing, of an unsupported type,
    unreadable, holds no triangles, or has non-finite coordinates.
    """
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
    vertices = np.asarray(loaded.vertices, dtype=np.float64)
    if not np.all(np.isfinite(vertices)):
        raise KscInputError(f"{path}: mesh has NaN or infinite vertex coordinates")
    mesh = trimesh.Trimesh(vertices=vertices, faces=np.asarray(loaded.faces, dtype=np.int64), process=False)
    with np.errstate(over="ignore", invalid="ignore"):
        measurable = np.all(np.isfinite(np.ptp(vertices, axis=0))) and np.isfinite(mesh.area)
    if not measurable:
        raise KscInputError(f"{path}: vertex coordinates are too large: sizes and areas overflow float64")
    if not mesh.area > 0.0:
        raise KscInputError(f"{path}: mesh has zero surface area (degenerate triangles)")
    return mesh


def check_output_format(path: str | os.PathLike) -> str:
    """The lower-case extension of ``path`` if ksc can write it, else KscInputError."""
    suffix = Path(path).suffix.lower()
    if suffix not in MESH_OUTPUTS:
        raise KscInputError(f"{path}: unsupported output format {suffix or '(none)'!r}; use one of {', '.join(MESH_OUTPUTS)}")
    return suffix


def mesh_bytes(mesh: trimesh.Trimesh, suffix: str) -> bytes:
    """``mesh`` serialized in the format named by ``suffix`` ('.ply', '.obj', ...)."""
    suffix = check_output_format(f"mesh{suffix}")
    data = mesh.export(file_type=suffix[1:])
    return data.encode() if isinstance(data, str) else data


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
