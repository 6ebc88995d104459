"""Golden vectors of every registered network (``ksc.models.MODELS``), written on purpose only:

    KSC_REGENERATE_GOLDEN=1 python -m tests.golden.vectors

For each golden file, and for a file of each branch of the model (activation, sphere features, weighting,
Fourier features; random weights, format 5.0), ``tests/golden/vectors/<model id>/<case>.json`` holds points in
the normalized frame and the values and gradients the model's torch module gives there. The torch module, the
hand-written training step, the numpy runtime and the JavaScript runtime are all checked against them
(``tests/test_network_contract.py``); the vectors never change unless a network's definition does.
"""

from __future__ import annotations

import json
import os
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

from ksc.format import Container, TensorRecord, UniformCodec, write_container
from ksc.models import MODELS

HERE = Path(__file__).resolve().parent
VECTORS = HERE / "vectors"
POINTS = 96
BRANCHES = {  # case -> model fields changed from the default (a small network: the vectors stay small)
    "relu": {"activation": "relu"},
    "latent": {"features": "latent"},
    "inverse": {"weighting": "inverse", "frequencies": 0},
    "inverse-square": {"weighting": "inverse_square", "feature_dim": 3},
    "paper-features": {"frequencies": 0, "feature_dim": 29},
}
SMALL = {"spheres": 12, "layers": 3, "width": 10}
READ_ONLY = ("inverse", "inverse-square")
"""Branches only the decoders read now (the weightings of files before ksc 0.14): the torch module that wrote
their vectors no longer fits them, so their files and vectors are kept as they are, never rewritten."""


def golden_files() -> list[Path]:
    return sorted(HERE.glob("v*/*.ksc"))


def branch_file(entry, fields: dict, seed: int) -> bytes:
    """A format 5.0 file of the model ``entry`` with ``fields``, random weights (16-bit uniform codec)."""
    config = entry.load("config")(**{**SMALL, **fields})
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    spheres = torch.rand(config.spheres, 4, generator=generator) * torch.tensor([1.6, 1.6, 1.6, 0.25]) + torch.tensor(
        [-0.8, -0.8, -0.8, 0.02]
    )
    network = entry.load("network")(config, spheres)
    records = []
    for name, value in network.stored_tensors().items():
        values = value.detach().numpy().astype(np.float64)
        low, high = float(values.min()), float(values.max())
        codec = UniformCodec(16, [low], [max(high - low, 1e-6) / 65535])
        records.append(TensorRecord(name, values.shape, codec, codec.encode(values.astype(np.float32))))
    meta = {
        "transform": {"center": [0.0, 0.0, 0.0], "scale": 1.0},
        "bound": 1.05,
        "model": config.to_dict(),
        "source": {"note": "a golden network of random weights (tests/golden/vectors.py), not a mesh"},
    }
    return write_container(Container(meta=meta, tensors=records))


def vectors_of(entry, data: bytes, seed: int) -> dict:
    """Points (POINTS, 3) in [-1.05, 1.05]^3 and the torch module's values and gradients there."""
    from ksc.models.network import load_model

    points = np.random.default_rng(seed).uniform(-1.05, 1.05, (POINTS, 3)).astype(np.float32)
    network = load_model(data)
    tensor = torch.from_numpy(points).requires_grad_(True)
    values = network(tensor)
    values.sum().backward()
    return {
        "points": points.tolist(),
        "values": values.detach().numpy().astype(float).tolist(),
        "gradients": tensor.grad.numpy().astype(float).tolist(),
    }


def main() -> int:
    if os.environ.get("KSC_REGENERATE_GOLDEN") != "1":
        print("refusing: set KSC_REGENERATE_GOLDEN=1 to rewrite golden vectors on purpose", file=sys.stderr)
        return 2
    for entry in MODELS.values():
        folder = VECTORS / entry.id
        folder.mkdir(parents=True, exist_ok=True)
        cases = {}  # case -> (file, bytes); a case's points are seeded by its name
        for path in golden_files():
            cases[f"{path.parent.name}-{path.stem}"] = (path.relative_to(HERE).as_posix(), path.read_bytes())
        for seed, (case, fields) in enumerate(BRANCHES.items(), start=1):
            if case not in READ_ONLY:
                (folder / f"{case}.ksc").write_bytes(branch_file(entry, fields, seed))
            cases[case] = (f"vectors/{entry.id}/{case}.ksc", (folder / f"{case}.ksc").read_bytes())
        for case, (file, data) in cases.items():
            if case in READ_ONLY:
                continue
            record = {"model": entry.id, "file": file, **vectors_of(entry, data, zlib.crc32(case.encode()))}
            (folder / f"{case}.json").write_text(json.dumps(record) + "\n")
            print(f"wrote {folder / case}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
