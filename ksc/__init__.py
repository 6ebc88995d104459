"""ksc: a neural codec for triangle meshes built on key spheres.

Two functions do the work, like zstandard's or DracoPy's::

    import ksc
    data = ksc.encode("bunny.obj")          # bytes of a .ksc file, 5-9 KB
    mesh = ksc.decode(data)                 # trimesh.Trimesh with vertex normals
    ksc.info(data)                          # what the file holds, as a dict
    mesh = ksc.load("bunny.ksc")            # a file by its path; trimesh.load_mesh("bunny.ksc") works too

``decode`` and ``info`` run in numpy and never import torch; ``encode`` trains
a network and needs the ``encode`` extra (torch, libigl).

The subpackages go by role: ``models`` (the network: shape, torch module, numpy
runtime), ``encoding``, ``decoding``, ``mesh`` and ``tools``. They are called
``encoding``/``decoding``, not ``encode``/``decode``: importing a subpackage binds
its name on ``ksc``, which would replace the functions ``ksc.encode``/``ksc.decode``.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _package_version
from typing import TYPE_CHECKING, Any

try:
    __version__ = _package_version("ksc")  # stated once, in pyproject.toml
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
__all__ = ["encode", "decode", "info", "load", "__version__"]

from ksc.tools.trimesh_loader import install as _install_trimesh_loader

_install_trimesh_loader()

if TYPE_CHECKING:  # for annotations only: `ksc info` must not import trimesh
    import trimesh


def encode(
    mesh: trimesh.Trimesh | str | os.PathLike,
    preset: str = "default",
    max_bytes: int | None = None,
    seed: int = 0,
    device: str = "auto",
    threads: int | None = None,
    **options: Any,
) -> bytes:
    """Encode a triangle mesh into ``.ksc`` bytes.

    Parameters
    ----------
    mesh : trimesh.Trimesh or path
        The mesh, in any position and scale, or a file ksc reads (.obj .ply .stl .off .glb .gltf).
    preset : str
        Rate point: 'small', 'default' or 'high' (``ksc.encoding.config.PRESETS``).
    max_bytes : int, optional
        The file is never larger: the network is narrowed and its weights coarsened to fit.
    seed : int
        The same mesh, options and seed give the same bytes on the same machine.
    device : str
        'auto' (CUDA when available, else the CPU), 'cpu', 'cuda', 'cuda:N'.
    threads : int, optional
        CPU cores for the training (default ``ksc.encoding.threads.TRAINING_THREADS``, two, or one where only one is
        usable), each in a process of its own; the bytes depend on it. Torch itself runs on one thread
        meanwhile; the caller's count is restored.
    **options
        Any other ``ksc.encoding.config.EncodeOptions`` field (``samples``, ``qat_steps``, ...).
    """
    from ksc.encoding.config import preset_options
    from ksc.encoding.pipeline import encode as encode_with_options
    from ksc.mesh.io import check_mesh, load_mesh

    mesh = load_mesh(mesh) if isinstance(mesh, str | os.PathLike) else check_mesh(mesh)
    settings = preset_options(preset, seed=seed, **options)
    fit_width = "model" not in options
    return encode_with_options(mesh, settings, max_bytes=max_bytes, fit_width=fit_width, device=device, threads=threads).data


def decode(data: bytes, resolution: int | None = None, faces: int | None = None) -> trimesh.Trimesh:
    """Decode ``.ksc`` bytes into a ``trimesh.Trimesh`` in the input's position and scale, with vertex normals.

    Parameters
    ----------
    data : bytes
        A ``.ksc`` file's contents.
    resolution : int, optional
        Marching-cubes grid nodes per axis, 16..1024 (default ``ksc.decoding.config.DEFAULT_RESOLUTION``).
    faces : int, optional
        None: twice the source mesh's face count, as the file records it; 0: the raw
        marching-cubes mesh; N: decimated to about N faces.
    """
    from ksc.decoding.config import DEFAULT_RESOLUTION
    from ksc.decoding.pipeline import decode as decode_bytes

    return decode_bytes(bytes(data), DEFAULT_RESOLUTION if resolution is None else resolution, faces=faces).mesh


def load(path: str | os.PathLike, resolution: int | None = None, faces: int | None = None) -> trimesh.Trimesh:
    """Decode the ``.ksc`` file at ``path`` into a ``trimesh.Trimesh`` (:func:`decode` of its bytes)."""
    with open(path, "rb") as file:
        return decode(file.read(), resolution=resolution, faces=faces)


def info(data: bytes) -> dict:
    """What a ``.ksc`` file holds: format version, sizes, model, spheres, parameters, source, encoder (JSON-ready)."""
    from ksc.format import read_container
    from ksc.format.report import describe_container

    return describe_container(read_container(bytes(data)))
