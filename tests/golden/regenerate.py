"""Write the golden files of the current format version, on purpose only.

Golden files pin the format: tests decode them forever after, so a reader
change that breaks old files fails CI. Regenerating one is a deliberate act:

    KSC_REGENERATE_GOLDEN=1 python tests/golden/regenerate.py

It writes only the current version's folder; older versions' files stay as they are.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import trimesh

from ksc.decoding.pipeline import decode_mesh
from ksc.encoding.config import EncodeOptions, TrainConfig
from ksc.encoding.pipeline import encode_mesh
from ksc.format import VERSION, read_container
from ksc.models.config import ModelConfig

HERE = Path(__file__).resolve().parent
GOLDEN_RESOLUTION = 64


def golden_torus() -> trimesh.Trimesh:
    mesh = trimesh.creation.torus(major_radius=1.0, minor_radius=0.35, major_sections=48, minor_sections=24)
    mesh.apply_translation([1.5, -2.0, 0.25])
    return mesh


def tensor_digests(data: bytes) -> dict[str, str]:
    """SHA-256 of every decoded tensor's float32 bytes."""
    return {name: hashlib.sha256(values.tobytes()).hexdigest() for name, values in read_container(data).tensor_map().items()}


def main() -> int:
    if os.environ.get("KSC_REGENERATE_GOLDEN") != "1":
        print("refusing: set KSC_REGENERATE_GOLDEN=1 to rewrite golden files on purpose", file=sys.stderr)
        return 2
    version = "v{}.{}".format(*VERSION)
    folder = HERE / version
    folder.mkdir(exist_ok=True)
    options = EncodeOptions(model=ModelConfig(spheres=64), train=TrainConfig(steps=1500), samples=200_000, seed=7)
    data = encode_mesh(golden_torus(), options).data
    mesh = decode_mesh(data, GOLDEN_RESOLUTION, faces=0)
    (folder / "torus.ksc").write_bytes(data)
    expected = {
        "file_bytes": len(data),
        "format_version": list(VERSION),
        "tensors": tensor_digests(data),
        "decoded_volume": float(mesh.volume),
        "resolution": GOLDEN_RESOLUTION,
    }
    (folder / "torus.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"wrote {folder / 'torus.ksc'} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
