"""The decoded mesh a user gets: its size, its normals, the files it is written to, and the Python API."""

from pathlib import Path

import numpy as np
import pytest
import trimesh

import ksc
from ksc.decoding.pipeline import STAGES, decode, source_faces
from ksc.encoding.config import TrainConfig
from ksc.errors import KscInputError
from ksc.format import VERSION, read_container
from ksc.mesh.io import serialize
from ksc.mesh.metrics import compare_meshes

from .golden.regenerate import golden_torus

GOLDEN = Path(__file__).resolve().parent / "golden" / "v{}.{}".format(*VERSION) / "torus.ksc"


@pytest.fixture(scope="module")
def data() -> bytes:
    return GOLDEN.read_bytes()


@pytest.fixture(scope="module")
def default(data):
    return decode(data, 96)


def test_default_output_has_twice_the_source_face_count(data, default):
    recorded = source_faces(read_container(data))
    assert recorded == 2304
    assert len(default.extraction.faces) > 4 * recorded  # marching cubes alone gives far more
    assert 1.9 * recorded <= len(default.faces) <= 2 * recorded
    assert default.mesh.is_watertight


def test_a_decode_times_its_stages(data, default):
    assert list(default.timings) == list(STAGES)
    assert all(seconds >= 0.0 for seconds in default.timings.values())
    assert decode(data, 96, faces=0).timings["decimation"] < 0.01  # nothing to decimate: the stage is empty


def test_faces_zero_keeps_marching_cubes_and_n_asks_for_n(data, default):
    raw = decode(data, 96, faces=0)
    assert len(raw.faces) == len(default.extraction.faces)
    assert 900 <= len(decode(data, 96, faces=1000).faces) <= 1100
    more = decode(data, 96, faces=10**7)  # never more than marching cubes gives
    assert len(more.faces) == len(raw.faces)


@pytest.mark.parametrize("faces", [-1, 1.5, True, 10**9])
def test_bad_face_counts_are_refused(data, faces):
    with pytest.raises(KscInputError, match="faces"):
        decode(data, 32, faces=faces)


def test_decimated_mesh_stays_on_the_shape(data, default):
    raw = decode(data, 96, faces=0).mesh
    reference = golden_torus()
    error, raw_error = compare_meshes(reference, default.mesh), compare_meshes(reference, raw)
    assert error.chamfer_l1 < 1.3 * raw_error.chamfer_l1
    assert error.iou > 0.95 * raw_error.iou


def test_normals_are_unit_outward_and_follow_the_facets(default):
    normals = default.normals
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    mesh = trimesh.Trimesh(default.vertices, default.faces, process=False)
    facet = mesh.face_normals
    per_face = normals[default.faces].mean(axis=1)
    cosine = (per_face * facet).sum(1) / np.linalg.norm(per_face, axis=1)
    assert np.median(cosine) > 0.98  # same side, nearly the same direction
    assert (cosine > 0).mean() > 0.99


@pytest.mark.parametrize("suffix", [".ply", ".obj", ".off", ".stl", ".glb"])
def test_every_output_format_reads_back(default, suffix, tmp_path):
    path = tmp_path / f"mesh{suffix}"
    path.write_bytes(serialize(default.vertices, default.faces, default.normals, suffix))
    loaded = trimesh.load(path, force="mesh", process=suffix == ".stl")
    assert len(loaded.faces) == len(default.faces)
    assert np.allclose(loaded.bounds, default.mesh.bounds, atol=1e-4 * default.mesh.scale)
    if suffix in (".ply", ".obj", ".glb"):  # the formats that carry vertex normals
        assert np.allclose(stored_normals(path), default.normals, atol=1e-5)


def stored_normals(path: Path) -> np.ndarray:
    """The vertex normals written in a PLY, OBJ or GLB file, read without trimesh (its loaders recompute them)."""
    data = path.read_bytes()
    if path.suffix == ".ply":
        header, body = data.split(b"end_header\n", 1)
        count = int(header.split(b"element vertex ")[1].split()[0])
        position = "<f4" if b"property float x" in header else "<f8"
        rows = np.frombuffer(body[: count * (3 * np.dtype(position).itemsize + 12)], dtype=[("p", position, 3), ("n", "<f4", 3)])
        return rows["n"]
    if path.suffix == ".obj":
        return np.array([line.split()[1:] for line in data.decode().splitlines() if line.startswith("vn ")], float)
    import json
    import struct

    length = struct.unpack("<I", data[12:16])[0]
    document = json.loads(data[20 : 20 + length])
    accessor = document["accessors"][document["meshes"][0]["primitives"][0]["attributes"]["NORMAL"]]
    view = document["bufferViews"][accessor["bufferView"]]
    binary = data[20 + length + 8 :]
    start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    return np.frombuffer(binary[start : start + 12 * accessor["count"]], "<f4").reshape(-1, 3)


def test_the_python_api_round_trips(data):
    mesh = ksc.decode(data, resolution=64)
    assert isinstance(mesh, trimesh.Trimesh) and len(mesh.faces) > 0
    report = ksc.info(data)
    assert report["format_version"] == "{}.{}".format(*VERSION) and report["spheres"] == 64
    with pytest.raises(KscInputError, match="faces"):
        ksc.decode(data, faces=-3)


@pytest.mark.slow
def test_python_encode_takes_a_mesh_or_a_path(torus, tmp_path):
    options = {"samples": 20_000, "qat_steps": 50, "train": TrainConfig(steps=300)}
    import torch

    threads = torch.get_num_threads()
    data = ksc.encode(torus, preset="small", seed=3, **options)
    assert torch.get_num_threads() == threads  # trained on ksc.encoding.threads.TRAINING_THREADS, the caller's count restored
    path = tmp_path / "torus.obj"
    torus.export(path)
    assert ksc.encode(str(path), preset="small", seed=3, **options) == ksc.encode(path, preset="small", seed=3, **options)
    assert ksc.info(data)["encoder"]["seed"] == 3
    with pytest.raises(KscInputError, match="no triangles"):
        ksc.encode(trimesh.Trimesh(vertices=np.zeros((3, 3)), faces=np.zeros((0, 3), int)))
