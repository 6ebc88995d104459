"""Write the golden files of the current format version, on purpose only.

Golden files pin the format: tests decode them forever after, so a reader
change that breaks old files fails CI. Regenerating one is a deliberate act:

    KSC_REGENERATE_GOLDEN=1 python -m tests.golden.regenerate [VERSION [NAME]]

It writes only one version's folder (default: the current version, 5.0; 5.1 holds the open torus, whose hole a
file of that version keeps, and a sheet), or only its file NAME; other files stay as they are.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
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


def golden_sheet() -> trimesh.Trimesh:
    """A wavy open square (no inside: ksc encodes it as a sheet), 2.4 wide, off the origin."""
    size = 24
    axis = np.linspace(-1.2, 1.2, size + 1)
    x, y = np.meshgrid(axis, axis, indexing="ij")
    z = 0.25 * np.sin(2.0 * x) * np.cos(1.5 * y)
    vertices = np.column_stack([x.ravel(), y.ravel(), z.ravel()]) + [0.5, -1.0, 2.0]
    index = np.arange(x.size).reshape(x.shape)
    a, b, c, d = index[:-1, :-1].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel(), index[:-1, 1:].ravel()
    return trimesh.Trimesh(vertices, np.concatenate([np.column_stack([a, b, c]), np.column_stack([a, c, d])]), process=False)


GOLDEN_MESHES = {
    "v5.0": {"torus": golden_torus},
    "v5.1": {"torus-open": golden_open_torus, "sheet": golden_sheet},
}
"""What each version's golden files encode (earlier versions' were written by their own ksc)."""


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
    names = sys.argv[2:] or list(GOLDEN_MESHES[version])
    if any(name not in GOLDEN_MESHES[version] for name in names):
        print(f"refusing: {version}'s golden files are {sorted(GOLDEN_MESHES[version])}", file=sys.stderr)
        return 2
    folder = HERE / version
    folder.mkdir(exist_ok=True)
    for name in names:
        options = EncodeOptions(model=ModelConfig(spheres=64), train=TrainConfig(steps=1500), samples=200_000, seed=7)
        data = encode_mesh(GOLDEN_MESHES[version][name](), options).data
        assert "v{}.{}".format(*read_container(data).version) == version, "the encoder wrote another version"
        mesh = decode_mesh(data, GOLDEN_RESOLUTION, faces=0)
        (folder / f"{name}.ksc").write_bytes(data)
        expected = {
            "file_bytes": len(data),
            "format_version": list(read_container(data).version),
            "tensors": tensor_digests(data),
            "decoded_volume": float(mesh.volume),
            "decoded_area": float(mesh.area),
            "resolution": GOLDEN_RESOLUTION,
        }
        (folder / f"{name}.json").write_text(json.dumps(expected, indent=2) + "\n")
        print(f"wrote {folder / name}.ksc ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
