"""``.ksc`` files in trimesh: after ``import ksc``, ``trimesh.load_mesh("bunny.ksc")`` decodes the file
(``trimesh.load`` gives a Scene holding it: trimesh 5 unwraps single meshes only for its own formats; the
scene's mesh keeps the field's normals, while ``load_mesh``'s copy recomputes them from the faces).

trimesh keeps its readers in a plain dict, ``trimesh.exchange.load.mesh_loaders``, from file type to a function
that returns the keyword arguments of a ``Trimesh``. ksc adds ``"ksc"`` to it. Importing trimesh costs ~0.4 s,
which ``ksc info`` does not need, so the entry is added when trimesh is imported, whichever comes first: at
once when it already is, else by a one-shot import hook that runs after trimesh's loader module.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

LOADER_MODULE = "trimesh.exchange.load"


def load_ksc(file_obj, file_type=None, resolution: int | None = None, faces: int | None = None, **_) -> dict:
    """trimesh's loader signature: a file object of ``.ksc`` bytes -> ``Trimesh`` keyword arguments.

    Returns
    -------
    dict
        ``vertices`` (V, 3) float64, ``faces`` (F, 3) int64 and ``vertex_normals`` (V, 3) float64, in the
        input mesh's position and scale (what :func:`ksc.decode` returns).
    """
    from ksc import decode

    data = file_obj.read() if hasattr(file_obj, "read") else bytes(file_obj)
    mesh = decode(data, resolution=resolution, faces=faces)
    return {"vertices": mesh.vertices, "faces": mesh.faces, "vertex_normals": mesh.vertex_normals, "process": False}


def register(module) -> None:
    """Add the ``ksc`` file type to trimesh's loaders (``module``: ``trimesh.exchange.load``)."""
    module.mesh_loaders["ksc"] = load_ksc


class _RegisterAfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds trimesh's loader module with the other finders, runs it, then registers ksc in it; used once."""

    def find_spec(self, name, path, target=None):
        if name != LOADER_MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        self._inner = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module) -> None:
        self._inner.exec_module(module)
        register(module)


def install() -> None:
    """Register now if trimesh's loaders are imported, else when they are."""
    if LOADER_MODULE in sys.modules:
        register(sys.modules[LOADER_MODULE])
    elif not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())
