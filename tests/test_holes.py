"""Holes stay holes: the input's boundary loops go into the file (format 5.1) and the decoder cuts the caps."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from ksc.decoding.pipeline import decode, load_field
from ksc.encoding.pipeline import encode_mesh
from ksc.format import read_container
from ksc.mesh.holes import MIN_AREA, boundary_loops, cut_holes, decode_holes, encode_holes

from .conftest import make_torus, quick_options
from .golden.regenerate import golden_open_torus


def _loops_near(mesh: trimesh.Trimesh, points: np.ndarray, reach: float) -> float:
    """Share of ``points`` within ``reach`` of a boundary vertex of ``mesh`` (welded)."""
    welded = trimesh.Trimesh(mesh.vertices, mesh.faces, process=True)
    loops = boundary_loops(np.asarray(welded.faces))
    if not loops:
        return 0.0
    rim = np.concatenate([welded.vertices[loop] for loop in loops])
    distance = np.linalg.norm(points[:, None, :] - rim[None, :, :], axis=2).min(axis=1)
    return float(np.mean(distance <= reach))


def test_boundary_loops_of_a_tube_and_of_a_closed_mesh():
    tube = trimesh.creation.cylinder(radius=0.5, height=1.0, sections=24)
    keep = np.abs(tube.face_normals[:, 2]) < 0.5  # the side only: two open ends
    loops = boundary_loops(tube.faces[keep])
    assert sorted(len(loop) for loop in loops) == [24, 24]
    assert boundary_loops(np.asarray(make_torus().faces)) == []


def test_holes_round_trip_through_their_integers():
    tube = trimesh.creation.cylinder(radius=0.5, height=1.0, sections=48)
    faces = tube.faces[np.abs(tube.face_normals[:, 2]) < 0.5]
    holes = encode_holes(tube.vertices, faces, bound=1.05)
    assert len(holes) == 2 and all(0 <= q <= 255 for loop in holes for q in loop)
    for loop in decode_holes(holes, bound=1.05):
        radius = np.linalg.norm(loop[:, :2], axis=1)
        assert np.abs(radius - 0.5).max() < 0.01 and np.ptp(loop[:, 2]) < 0.01  # on the rim, within a level


def test_a_slit_and_a_seam_are_no_holes():
    square = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    split = trimesh.Trimesh(square.vertices[square.faces].reshape(-1, 3), np.arange(36).reshape(-1, 3), process=False)
    assert encode_holes(split.vertices, split.faces, 1.05) == []  # every vertex duplicated: a seam, welded back
    thin = trimesh.creation.cylinder(radius=0.005, height=1.0, sections=24)  # ends longer than 2 % of the diagonal
    faces = thin.faces[np.abs(thin.face_normals[:, 2]) < 0.5]
    assert np.pi * 0.005**2 < MIN_AREA and encode_holes(thin.vertices, faces, 1.05) == []  # but enclosing ~nothing


def test_the_cut_removes_only_the_cap():
    tube = trimesh.creation.cylinder(radius=0.5, height=1.0, sections=48)  # closed: its end discs are the caps
    loop = tube.vertices[np.abs(tube.vertices[:, 2] - 0.5) < 1e-9]
    loop = loop[np.linalg.norm(loop[:, :2], axis=1) > 0.25]
    loop = loop[np.argsort(np.arctan2(loop[:, 1], loop[:, 0]))]
    kept = cut_holes(tube.vertices, tube.faces, [loop], cell=0.01)
    removed = np.setdiff1d(np.arange(len(tube.faces)), [np.flatnonzero((tube.faces == f).all(axis=1))[0] for f in kept])
    centres = tube.triangles_center[removed]
    assert len(removed) > 0 and np.allclose(centres[:, 2], 0.5)  # the top disc, nothing of the side or bottom


@pytest.mark.slow
def test_an_open_mesh_decodes_open_and_a_closed_one_as_before():
    opened = golden_open_torus()
    data = encode_mesh(opened, quick_options(steps=600)).data
    assert read_container(data).version == (5, 1) and len(load_field(data).holes) == 1
    decoded = decode(data, resolution=96, faces=0).mesh
    welded = trimesh.Trimesh(opened.vertices, opened.faces, process=True)
    (rim,) = boundary_loops(np.asarray(welded.faces))
    assert _loops_near(decoded, welded.vertices[rim], reach=0.1) > 0.9  # the input's loop is in the output
    closed = encode_mesh(make_torus(), quick_options(steps=300)).data
    assert read_container(closed).version == (5, 0) and "holes" not in read_container(closed).meta
