import numpy as np
import pytest
import trimesh

from ksc.errors import KscInputError
from ksc.mesh.io import check_output_format, load_mesh, mesh_bytes, write_atomic


def test_loads_every_supported_input_format(tmp_path, sphere_mesh):
    for suffix in (".obj", ".ply", ".stl", ".off", ".glb"):
        path = tmp_path / f"ball{suffix}"
        sphere_mesh.export(path)
        mesh = load_mesh(path)
        assert len(mesh.faces) == len(sphere_mesh.faces), suffix
        assert np.allclose(mesh.bounds, sphere_mesh.bounds, atol=1e-5), suffix


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("empty.obj", b"", "no triangles"),
        ("points.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no triangles"),
        ("nan.obj", b"v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n", "NaN or infinite"),
        ("inf.obj", b"v 0 0 0\nv inf 0 0\nv 0 1 0\nf 1 2 3\n", "NaN or infinite"),
        ("huge.obj", b"v -1e308 0 0\nv 1e308 0 0\nv 0 1e308 0\nf 1 2 3\n", "too large"),
        ("flat.obj", b"v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n", "zero surface area"),
        (
            "points.ply",
            b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\n"
            b"end_header\n0 0 0\n1 1 1\n",
            "no triangles",
        ),
        ("bad_index.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", "no triangles|cannot read|index"),
        ("garbage.stl", bytes(range(256)) * 4, "cannot read|no triangles"),
        ("junk.ply", b"ply\nthis is not a ply file\n", "cannot read|no triangles"),
        ("mesh.xyz", b"0 0 0\n", "unsupported mesh format"),
    ],
)
def test_bad_inputs_raise_one_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(KscInputError, match=message):
        load_mesh(path)


def test_missing_file(tmp_path):
    with pytest.raises(KscInputError, match="no such file"):
        load_mesh(tmp_path / "absent.obj")


def test_output_formats_by_extension(sphere_mesh):
    assert mesh_bytes(sphere_mesh, ".ply")[:3] == b"ply"
    assert check_output_format("out.GLB") == ".glb"
    with pytest.raises(KscInputError, match="unsupported output format"):
        check_output_format("out.vrml")


def test_write_atomic_replaces_only_with_a_complete_file(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    write_atomic(target, b"first")
    assert target.read_bytes() == b"first"
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"")
    assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777  # not mkstemp's private 0600
    plain.unlink()

    def broken_replace(*_args):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(target, b"second")
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary left behind


def test_trimesh_scene_is_merged(tmp_path, sphere_mesh):
    scene = trimesh.Scene([sphere_mesh, sphere_mesh.copy().apply_translation([3, 0, 0])])
    path = tmp_path / "scene.glb"
    scene.export(path)
    assert len(load_mesh(path).faces) == 2 * len(sphere_mesh.faces)


def test_inconsistently_wound_faces_are_flipped_back_and_the_signs_kept():
    """Half the faces flipped at random (common in Thingi10K) cancel the winding number; ksc repairs the winding first."""
    import trimesh

    from ksc.mesh.io import consistently_wound
    from ksc.mesh.sampling import inside_by_winding_number

    from .conftest import make_torus

    good = make_torus()
    faces = good.faces.copy()
    flip = np.random.default_rng(0).random(len(faces)) < 0.5
    faces[flip] = faces[flip][:, ::-1]
    bad = trimesh.Trimesh(good.vertices, faces, process=False)
    probes = np.random.default_rng(1).uniform(good.bounds[0], good.bounds[1], size=(4000, 3))
    truth = inside_by_winding_number(good.vertices, good.faces, probes)
    assert (inside_by_winding_number(bad.vertices, bad.faces, probes) != truth).mean() > 0.1  # what went wrong
    repaired, flipped = consistently_wound(bad)
    assert flipped == int(flip.sum())
    assert repaired.is_winding_consistent and repaired.volume > 0
    assert np.array_equal(inside_by_winding_number(repaired.vertices, repaired.faces, probes), truth)
    same, none = consistently_wound(good)
    assert same is good and none == 0  # a consistent mesh is left alone: same object, same bytes


def test_an_unwelded_soup_of_overlapping_parts_with_flipped_faces_is_welded_and_turned_outwards():
    """Like Thingi10K's castle kit: every face with its own vertices, parts overlapping, about half the faces
    flipped. Welded by position and wound consistently, each closed part points outwards: the inside is the union."""
    import trimesh

    from ksc.mesh.io import consistently_wound
    from ksc.mesh.sampling import inside_by_winding_number

    first = trimesh.creation.box(extents=(2.0, 1.0, 1.0))
    second = trimesh.creation.box(extents=(1.0, 0.8, 2.0))
    second.apply_translation([0.3, 0.0, 0.6])  # overlapping, no face in a plane of the first's
    second.invert()  # one whole part points inwards
    parts = trimesh.util.concatenate([first.subdivide().subdivide(), second.subdivide().subdivide()])
    faces = parts.faces.copy()
    flip = np.random.default_rng(0).random(len(faces)) < 0.5
    faces[flip] = faces[flip][:, ::-1]
    corners = parts.vertices[faces].reshape(-1, 3)  # unwelded: three vertices of its own per face
    soup = trimesh.Trimesh(corners, np.arange(len(corners)).reshape(-1, 3), process=False)
    assert soup.is_winding_consistent  # no shared edges: nothing to judge before welding

    repaired, flipped = consistently_wound(soup)
    assert flipped > 0 and repaired.is_winding_consistent and len(repaired.faces) == len(soup.faces)
    assert all(part.volume > 0 for part in repaired.split(only_watertight=False))
    probes = np.random.default_rng(1).uniform(-1.2, 1.7, size=(4000, 3))
    union = inside_by_winding_number(first.vertices, first.faces, probes) | inside_by_winding_number(
        second.vertices, second.faces[:, ::-1], probes
    )
    assert np.array_equal(inside_by_winding_number(repaired.vertices, repaired.faces, probes), union)
