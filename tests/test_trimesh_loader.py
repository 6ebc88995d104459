"""trimesh reads .ksc files once ksc is imported, whichever of the two is imported first."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import trimesh

import ksc

GOLDEN = Path(__file__).resolve().parent / "golden" / "v5.0" / "torus.ksc"


def test_trimesh_load_mesh_decodes_a_ksc_file():
    expected = ksc.decode(GOLDEN.read_bytes())
    mesh = trimesh.load_mesh(GOLDEN)
    assert isinstance(mesh, trimesh.Trimesh)
    np.testing.assert_array_equal(mesh.faces, expected.faces)
    np.testing.assert_allclose(mesh.vertices, expected.vertices)


def test_trimesh_load_gives_a_scene_of_the_mesh_with_the_field_s_normals():
    # trimesh 5's load() unwraps single meshes only for its own formats, and load_mesh() copies the mesh
    # without its cache, so only the scene's mesh keeps the normals the loader gave (the field's gradient).
    expected = ksc.decode(GOLDEN.read_bytes())
    scene = trimesh.load(GOLDEN)
    (mesh,) = scene.geometry.values()
    np.testing.assert_array_equal(mesh.faces, expected.faces)
    np.testing.assert_allclose(mesh.vertex_normals, expected.vertex_normals, atol=1e-6)


def test_ksc_load_reads_a_path():
    mesh = ksc.load(GOLDEN, faces=0)
    assert len(mesh.faces) == len(ksc.decode(GOLDEN.read_bytes(), faces=0).faces)


def test_registered_whether_ksc_or_trimesh_is_imported_first():
    for order in ("import ksc, trimesh", "import trimesh, ksc"):
        code = f"{order}; print(type(trimesh.load_mesh({str(GOLDEN)!r})).__name__)"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert done.stdout.strip() == "Trimesh", (order, done.stderr[-2000:])


def test_ksc_info_does_not_import_trimesh():
    code = "import sys, ksc, ksc.format; print('trimesh' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr[-2000:]
