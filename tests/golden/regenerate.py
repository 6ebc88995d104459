"""Write the golden files of the current format version, on purpose only.

Golden files pin the format: tests decode them forever after, so a reader
change that breaks old files fails CI. Regenerating one is a deliberate act:

    KSC_REGENERATE_GOLDEN=1 python -m tests.golden.regenerate [VERSION]

It writes only one version's folder (default: the current version, 5.0; 5.1 is the open torus, whose hole a
file of that version keeps); other versions' files stay as they are.
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


def golden_open_torus() -> trimesh.Trimesh:
    """The golden torus with the faces beyond x = 2.75 removed: an open tube whose one hole is a 0.35-radius circle."""
    mesh = golden_torus()
    keep = mesh.triangles_center[:, 0] < 2.75
    return trimesh.Trimesh(mesh.vertices, mesh.faces[keep], process=False)


GOLDEN_MESHES = {"v5.0": ("torus", golden_torus), "v5.1": ("torus-open", golden_open_torus)}
"""What each version's golden file encodes (earlier versions' were written by their own ksc)."""


def tensor_digests(data: bytes) -> dict[str, str]:
    """SHA-256 of every decoded tensor's float32 bytes."""
    return {name: hashlib.sha256(values.tobytes()).hexdigest() for name, values in read_container(data).tensor_map().items()}


def main() -> int:
    if os.environ.get("KSC_REGENERATE_GOLDEN") != "1":
        print("refusing: set KSC_REGENERATE_GOLDEN=1 to rewrite golden files on purpose", file=sys.stderr)
        return 2
    version = sys.argv[1] if len(sys.argv) > 1 else "v{}.{}".format(*VERSION)
    if version not in GOLDEN_MESHES:
        print(f"refusing: this ksc writes golden files of {sorted(GOLDEN_MESHES)} only", file=sys.stderr)
        return 2
    name, make = GOLDEN_MESHES[version]
    folder = HERE / version
    folder.mkdir(exist_ok=True)
    options = EncodeOptions(model=ModelConfig(spheres=64), train=TrainConfig(steps=1500), samples=200_000, seed=7)
    data = encode_mesh(make(), options).data
    assert "v{}.{}".format(*read_container(data).version) == version, "the encoder wrote another version"
    mesh = decode_mesh(data, GOLDEN_RESOLUTION, faces=0)
    (folder / f"{name}.ksc").write_bytes(data)
    expected = {
        "file_bytes": len(data),
        "format_version": list(read_container(data).version),
        "tensors": tensor_digests(data),
        "decoded_volume": float(mesh.volume),
        "resolution": GOLDEN_RESOLUTION,
    }
    (folder / f"{name}.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"wrote {folder / name}.ksc ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
