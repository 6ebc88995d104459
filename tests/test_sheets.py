"""Sheets (ksc.mesh.sheets): a surface with no inside is encoded as the thin shell around it and decoded back
to one side, open where the input was."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import trimesh
from skimage.measure import marching_cubes

from ksc.decoding.pipeline import decode
from ksc.encoding.pipeline import encode_mesh
from ksc.format import read_container
from ksc.format.report import describe_container
from ksc.mesh.holes import boundary_loops
from ksc.mesh.metrics import compare_meshes
from ksc.mesh.sheets import CELLS_ACROSS, THICKNESS, collapse_shell, min_resolution
from ksc.mesh.topology import face_components, weld_by_position
from tests.conftest import quick_options

RADIUS = 0.6


def disc_shell(thickness: float = THICKNESS, nodes: int = 96):
    """The shell of half-thickness ``thickness`` around the disc of :data:`RADIUS` in the plane z = 0: marching
    cubes of ``t - d`` with the exact outward normals (the gradient of ``d``)."""
    axis = np.linspace(-1.0, 1.0, nodes)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    radial = np.maximum(np.hypot(x, y) - RADIUS, 0.0)
    vertices, faces, _, _ = marching_cubes(thickness - np.hypot(radial, z), 0.0, spacing=(axis[1] - axis[0],) * 3)
    vertices = vertices - 1.0
    faces = faces[:, ::-1]  # skimage winds them towards the larger values: inwards here
    r = np.hypot(vertices[:, 0], vertices[:, 1])
    outward = np.column_stack([vertices[:, :2] * (np.maximum(r - RADIUS, 0.0) / np.maximum(r, 1e-12))[:, None], vertices[:, 2]])
    outward /= np.linalg.norm(outward, axis=1, keepdims=True)
    return vertices, faces.astype(np.int64), outward


def test_a_disc_shell_collapses_to_one_side_of_the_disc():
    vertices, faces, normals = disc_shell()
    assert len(np.unique(face_components(faces))) == 1  # one closed shell
    sheet_v, sheet_f = collapse_shell(vertices, faces, normals, THICKNESS)
    assert len(np.unique(face_components(sheet_f))) == 1  # one side kept, the other dropped as its twin
    assert np.abs(sheet_v[:, 2]).max() < 0.1 * THICKNESS  # on the disc
    assert np.hypot(sheet_v[:, 0], sheet_v[:, 1]).max() < RADIUS + 0.5 * THICKNESS
    area = trimesh.Trimesh(sheet_v, sheet_f, process=False).area
    assert abs(area - np.pi * RADIUS**2) < 0.05 * np.pi * RADIUS**2  # one layer, not two
    loops = boundary_loops(sheet_f)
    assert len(loops) == 1 and np.hypot(*sheet_v[loops[0], :2].T).min() > RADIUS - 4 * THICKNESS  # open at the rim


def test_a_shell_too_thin_for_the_grid_is_not_mistaken_for_a_sheet():
    """Both sides are kept where they are farther apart than the shell: a closed surface is never halved."""
    sphere = trimesh.creation.icosphere(3)
    vertices, faces = collapse_shell(sphere.vertices, sphere.faces, sphere.vertex_normals, 0.02)
    assert len(faces) == len(sphere.faces)


def test_min_resolution_resolves_the_shell():
    assert min_resolution(THICKNESS, 1.05) <= 192  # the default grid is fine enough for the default shell
    assert 2 * 1.05 / (min_resolution(0.01, 1.05) - 1) <= 2 * 0.01 / CELLS_ACROSS
    assert min_resolution(THICKNESS, 1.05) <= 129  # the JS decoder's default 128 cells too


def square(size: int = 12) -> trimesh.Trimesh:
    """A flat open square in z = 0, a grid of ``size`` x ``size`` quads."""
    axis = np.linspace(-1.0, 1.0, size + 1)
    x, y = np.meshgrid(axis, axis, indexing="ij")
    vertices = np.column_stack([x.ravel(), y.ravel(), np.zeros(x.size)])
    index = np.arange(x.size).reshape(x.shape)
    a, b, c, d = index[:-1, :-1].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel(), index[:-1, 1:].ravel()
    faces = np.concatenate([np.column_stack([a, b, c]), np.column_stack([a, c, d])])
    return trimesh.Trimesh(vertices, faces, process=False)


@pytest.fixture(scope="module")
def encoded_square():
    source = square()
    return source, encode_mesh(source, quick_options(steps=1500)).data


def test_which_open_meshes_enclose_a_volume():
    from ksc.encoding.sampling import SignedDistance

    def encloses_volume(mesh):
        return SignedDistance(mesh).encloses_volume()

    sphere = trimesh.creation.icosphere(3)
    assert encloses_volume(sphere)
    holed = trimesh.Trimesh(sphere.vertices, sphere.faces[sphere.triangles_center[:, 2] < 0.9])  # a scan's hole
    assert encloses_volume(holed)
    bowl = trimesh.Trimesh(sphere.vertices, sphere.faces[sphere.triangles_center[:, 2] < 0.2])  # a single-sided shell
    assert not encloses_volume(bowl) and not encloses_volume(square())


def test_a_flat_square_is_encoded_as_a_sheet_and_decodes_open(encoded_square):
    source, data = encoded_square
    container = read_container(data)
    assert container.version == (5, 1) and container.meta["sheet"] == THICKNESS and "holes" not in container.meta
    info = describe_container(container)
    assert info["open_surface"] and info["sheet"] == THICKNESS
    decoded = decode(data).mesh
    error = compare_meshes(source, decoded)
    assert error.chamfer_l1 < 2e-3 and error.hausdorff < 0.05, error
    vertices, faces = weld_by_position(decoded.vertices, decoded.faces)
    assert len(boundary_loops(faces)) == 1  # the square's edge, open
    assert abs(decoded.area - source.area) < 0.05 * source.area  # one side
    assert np.allclose(np.linalg.norm(decoded.vertex_normals, axis=1), 1.0)


def test_a_coarse_decode_of_a_sheet_is_raised_to_its_minimum_grid(encoded_square, caplog):
    _, data = encoded_square
    with caplog.at_level(logging.WARNING, logger="ksc.decoding.pipeline"):
        decoded = decode(data, resolution=32, faces=0)
    assert "a sheet decodes on at least" in caplog.text
    assert decoded.extraction.spacing <= 2 * THICKNESS / CELLS_ACROSS


def test_an_open_tube_is_a_sheet():
    """An open tube's winding number is over 1/2 inside it but never settles at 1: a single-sided shell, encoded as
    a sheet, open at both ends (a volume would cap them)."""
    cylinder = trimesh.creation.cylinder(0.5, 1.5, sections=32)
    tube = trimesh.Trimesh(cylinder.vertices, cylinder.faces[np.abs(cylinder.face_normals[:, 2]) < 0.5])
    tube.remove_unreferenced_vertices()
    data = encode_mesh(tube, quick_options(steps=1500, spheres=64)).data
    assert read_container(data).meta["sheet"] == THICKNESS
    decoded = decode(data).mesh
    assert compare_meshes(tube, decoded).chamfer_l1 < 3e-3
    assert np.hypot(*decoded.triangles_center[:, :2].T).min() > 0.4  # no cap over either end
    dense = decode(data, faces=0).mesh  # its boundary's vertices one a cell apart
    vertices, faces = weld_by_position(dense.vertices, dense.faces)
    rim = vertices[np.unique(np.concatenate(boundary_loops(faces)))]
    for end in (-0.75, 0.75):  # the output's boundary runs round each end (a short training may tear more)
        at_end = rim[np.abs(rim[:, 2] - end) < 0.05]
        angles = np.floor((np.arctan2(at_end[:, 1], at_end[:, 0]) + np.pi) / (np.pi / 8))
        assert len(np.unique(angles)) == 16, end


def test_the_cli_says_the_grid_a_sheet_was_decoded_on(tmp_path):
    from click.testing import CliRunner

    from ksc.cli.main import main
    from tests.golden.regenerate import HERE

    result = CliRunner().invoke(main, ["decode", str(HERE / "v5.1" / "sheet.ksc"), str(tmp_path / "s.ply"), "--resolution", "64"])
    assert result.exit_code == 0 and (tmp_path / "s.ply").is_file()
    assert "at resolution 127" in result.output  # its warning: test_a_coarse_decode_of_a_sheet_is_raised_to_its_minimum_grid
