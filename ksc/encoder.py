"""Mesh -> ``.ksc`` bytes: normalize, sample, pick key spheres, train, quantize."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import trimesh

from ksc import __version__
from ksc.config import EncodeOptions, ModelConfig
from ksc.errors import KscInputError
from ksc.format import Container, RowUniformCodec, TensorRecord, UniformCodec, write_container
from ksc.model import KeySphereNet
from ksc.normalize import Transform
from ksc.sampling import SignedDistance, sample_sdf
from ksc.spheres import extract_key_spheres
from ksc.train import fit

log = logging.getLogger(__name__)

DOMAIN_BOUND = 1.05
"""Half-size of the box the network is trained and decoded in: the mesh fills
[-1, 1]^3, and the margin lets marching cubes close surfaces that touch it."""

FLOAT16_SAFE = 6e4  # row quantization parameters are float16
SPHERE_BITS = 12
SPHERE_RANGE = ((-1.0, -1.0, -1.0, 0.0), (1.0, 1.0, 1.0, 1.0))


@dataclass(frozen=True)
class EncodeResult:
    """The file's bytes and what it took to make them."""

    data: bytes
    spheres: int
    stored_parameters: int
    final_loss: float
    seconds: float


def encode_mesh(
    mesh: trimesh.Trimesh,
    options: EncodeOptions | None = None,
    device: torch.device | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> EncodeResult:
    """Encode ``mesh`` (original coordinates) into ``.ksc`` bytes.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Input mesh, as returned by :func:`ksc.meshio.load_mesh`.
    options : EncodeOptions, optional
        Network shape, training, quantization and seed (default: ``EncodeOptions()``).
    device : torch.device, optional
        Where to train (default: the CPU, the reproducible reference path).
    on_step : callable, optional
        Progress callback ``on_step(step, loss)``.
    """
    start = time.monotonic()
    options = options or EncodeOptions()
    device = device or torch.device("cpu")
    transform = Transform.fit(mesh.vertices)
    unit = trimesh.Trimesh(vertices=transform.to_unit(mesh.vertices), faces=mesh.faces, process=False)
    signed_distance = SignedDistance(unit)
    rng = np.random.default_rng(options.seed)

    spheres, sphere_codec = _quantized_spheres(signed_distance, options.model.spheres)
    if len(spheres) < options.model.spheres:
        log.warning("only %d key spheres fit inside the shape (asked for %d)", len(spheres), options.model.spheres)
    config = ModelConfig(**{**options.model.to_dict(), "spheres": len(spheres)})
    samples = sample_sdf(unit, signed_distance, options.samples, DOMAIN_BOUND, rng)
    log.info("sampled %d points, %d key spheres", options.samples, len(spheres))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options.seed)
        model = KeySphereNet(config, torch.from_numpy(spheres)).to(device)
    generator = torch.Generator().manual_seed(options.seed)
    loss = fit(model, samples, options.train, generator, device, on_step)
    log.info("trained: final L1 loss %.5f", loss)

    records = [TensorRecord("spheres", spheres.shape, sphere_codec, sphere_codec.encode(spheres))]
    for name, tensor in model.stored_tensors().items():
        if name != "spheres":
            records.append(_quantized_record(name, tensor.detach().cpu().numpy(), options.weight_bits))
    meta = {
        "transform": {"center": [float(v) for v in transform.center], "scale": float(transform.scale)},
        "bound": DOMAIN_BOUND,
        "model": config.to_dict(),
        "source": {"vertices": int(len(mesh.vertices)), "faces": int(len(mesh.faces))},
        "encoder": {
            "ksc": __version__,
            "seed": options.seed,
            "samples": options.samples,
            "train": options.train.to_dict(),
            "final_loss": round(loss, 7) if math.isfinite(loss) else None,
        },
    }
    data = write_container(Container(meta=meta, tensors=records))
    return EncodeResult(
        data=data,
        spheres=len(spheres),
        stored_parameters=model.stored_parameter_count(),
        final_loss=loss,
        seconds=time.monotonic() - start,
    )


def _quantized_spheres(signed_distance: SignedDistance, count: int) -> tuple[np.ndarray, UniformCodec]:
    """Key spheres already rounded to what the file stores, so training sees the decoder's input."""
    spheres = extract_key_spheres(signed_distance, count)
    codec = UniformCodec.over_range(SPHERE_BITS, SPHERE_RANGE[0], SPHERE_RANGE[1], axis=1)
    spheres = np.clip(spheres, SPHERE_RANGE[0], SPHERE_RANGE[1])
    return codec.decode(codec.encode(spheres), spheres.shape), codec


def _quantized_record(name: str, values: np.ndarray, bits: int) -> TensorRecord:
    """Per-row quantization for matrices, per-tensor for vectors."""
    if not np.all(np.isfinite(values)) or np.abs(values).max() > FLOAT16_SAFE:
        raise KscInputError(f"training diverged: tensor {name!r} has non-finite or huge values (try a lower learning rate)")
    codec = RowUniformCodec(bits) if values.ndim == 2 else UniformCodec.fit(values, bits)
    return TensorRecord(name, values.shape, codec, codec.encode(values))
