"""``.ksc`` bytes -> network -> mesh in the original coordinates."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import trimesh

from ksc.config import DEFAULT_RESOLUTION, MAX_RESOLUTION, MIN_RESOLUTION, ModelConfig
from ksc.errors import KscFormatError, KscInputError
from ksc.extract import Extraction, extract_mesh
from ksc.format import Container, read_container
from ksc.format.layout import model_from_map
from ksc.model import KeySphereNet, stored_shapes
from ksc.normalize import Transform

FOURIER_MAJOR = 3
"""The first format version whose ``model`` has ``frequencies``."""
FEATURE_DIM_MAJOR = 4
"""The first format version whose ``model`` has ``feature_dim``; older files mean the paper's 29."""
PAPER_FEATURE_DIM = 29


@dataclass
class DecodedModel:
    """A network rebuilt from a file, with the frame it lives in."""

    model: KeySphereNet
    transform: Transform
    bound: float
    container: Container


def load_model(data: bytes, device: torch.device | None = None) -> DecodedModel:
    """Rebuild the network from ``.ksc`` bytes alone."""
    container = read_container(data)
    meta = container.meta
    transform = _transform(meta.get("transform"))
    bound = meta.get("bound")
    if not isinstance(bound, float) or not 1.0 <= bound <= 2.0:
        raise KscFormatError(f"header field 'bound' must be a float in [1, 2], got {bound!r}")
    config = _model_config(meta.get("model"), container.version[0])
    expected = stored_shapes(config)
    found = {record.name: record.shape for record in container.tensors}
    if found != expected:
        wrong = sorted(name for name in expected.keys() | found.keys() if expected.get(name) != found.get(name))
        name = wrong[0]
        raise KscFormatError(
            f"tensor {name!r} has shape {found.get(name, 'missing')}, the model in the header needs {expected.get(name, 'none')}"
        )
    tensors = container.tensor_map()
    spheres = tensors["spheres"]
    if np.any(spheres[:, 3] < 0.0):
        raise KscFormatError("tensor 'spheres' has a negative radius")
    model = KeySphereNet(config, torch.from_numpy(spheres))
    model.load_stored_tensors({name: torch.from_numpy(v) for name, v in tensors.items()})
    model.eval()
    return DecodedModel(model=model.to(device or torch.device("cpu")), transform=transform, bound=bound, container=container)


VERIFY_PROBES = 9  # nodes per axis of the small grid verify() runs the network on


def verify(data: bytes) -> DecodedModel:
    """Check ``.ksc`` bytes without decoding a mesh.

    The checksum, every header field and limit, tensor shapes against the
    model, and a run of the network on a small grid, whose values must be
    finite. Any problem raises KscFormatError; the rebuilt model is returned.
    """
    decoded = load_model(data)
    axis = torch.linspace(-decoded.bound, decoded.bound, VERIFY_PROBES)
    probes = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
    with torch.inference_mode():
        values = decoded.model(probes)
    if not torch.all(torch.isfinite(values)):
        raise KscFormatError("the network gives non-finite values")
    return decoded


@dataclass
class Decoded:
    """A decoded mesh (original coordinates) and how it was extracted."""

    mesh: trimesh.Trimesh
    extraction: Extraction


def decode(data: bytes, resolution: int = DEFAULT_RESOLUTION, device: torch.device | None = None, dense: bool = False) -> Decoded:
    """Decode ``.ksc`` bytes into a mesh in the input's original coordinates.

    Parameters
    ----------
    data : bytes
        A ``.ksc`` file's contents.
    resolution : int
        Grid nodes per axis for marching cubes (16..1024).
    device : torch.device, optional
        Where the network runs (default: the CPU).
    dense : bool
        Evaluate every grid node instead of only the blocks near the surface
        (same mesh, many more network calls; kept for comparison).
    """
    if not isinstance(resolution, int) or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise KscInputError(f"resolution must be an integer in [{MIN_RESOLUTION}, {MAX_RESOLUTION}], got {resolution!r}")
    device = device or torch.device("cpu")
    decoded = load_model(data, device)
    extraction = extract_mesh(decoded.model, resolution, decoded.bound, device, dense=dense)
    vertices = decoded.transform.to_original(extraction.vertices)
    return Decoded(mesh=trimesh.Trimesh(vertices=vertices, faces=extraction.faces, process=False), extraction=extraction)


def decode_mesh(
    data: bytes, resolution: int = DEFAULT_RESOLUTION, device: torch.device | None = None, dense: bool = False
) -> trimesh.Trimesh:
    """The mesh of :func:`decode`."""
    return decode(data, resolution, device, dense).mesh


def _model_config(section, major: int) -> ModelConfig:
    """The network's configuration from the header's ``model`` map of a format ``major`` file.

    ``frequencies`` (Fourier features of the query point) came with format 3.0
    and ``feature_dim`` (values per sphere feature) with 4.0: a file of such a
    version must state the field, and an older file cannot have it.
    """
    if not isinstance(section, dict):
        raise KscFormatError("header field 'model' is missing or not a map")
    for name, since, before in (("frequencies", FOURIER_MAJOR, 0), ("feature_dim", FEATURE_DIM_MAJOR, PAPER_FEATURE_DIM)):
        if major < since:
            if name in section:
                raise KscFormatError(f"header field 'model' has {name!r}, which format {major}.x does not define")
            section = {**section, name: before}  # the network those versions wrote
        elif name not in section:
            raise KscFormatError(f"header field 'model' lacks {name!r}, which format {major}.x requires")
    return model_from_map(section)


def _transform(section) -> Transform:
    if not isinstance(section, dict):
        raise KscFormatError("header field 'transform' is missing or not a map")
    center, scale = section.get("center"), section.get("scale")
    if not isinstance(center, list) or len(center) != 3 or not all(isinstance(v, float) and math.isfinite(v) for v in center):
        raise KscFormatError(f"transform.center must be 3 finite floats, got {center!r}")
    if not isinstance(scale, float) or not math.isfinite(scale) or scale <= 0.0:
        raise KscFormatError(f"transform.scale must be a positive finite float, got {scale!r}")
    return Transform(center=np.array(center, dtype=np.float64), scale=scale)
