"""Which of a file's holes the decoder should cut: only those whose cut removes a cap.

The encoder stores every candidate loop of the input (:func:`ksc.mesh.holes.encode_holes`); once the network is
trained it decodes the file on the self-check's grid and keeps a loop only where the faces its cut would remove
lie away from the input's surface (their median distance over :data:`CAP_CELLS` cells): a cap the volume put
over an opening. Where they lie on the input, the cut would remove real geometry, and where it removes nothing
the loop's bytes are wasted: such loops are taken out of the file (its tensors unchanged).
"""

from __future__ import annotations

import numpy as np
import trimesh

from ksc.decoding.extract import extract_mesh
from ksc.decoding.pipeline import load_field
from ksc.encoding.check import CHECK_RESOLUTION
from ksc.format import Container, read_container, write_container
from ksc.mesh.holes import cap_mask
from ksc.mesh.metrics import surface_distances
from ksc.models.runtime import one_blas_thread

CAP_CELLS = 0.5
"""Median distance, in cells of the self-check's 96^3 grid, above which the faces a loop's cut removes are a cap:
the open bunny scan's five caps have medians of 0.67-1.69 cells; the loops that cut real surface on open corpus
meshes (ornate_key, walkie_talkie, Guitar, Monitor: p99 up to 2.3x when cut) 0.02-0.12 (docs/results.md, "Holes")."""


def keep_cutting_holes(data: bytes, unit_mesh: trimesh.Trimesh) -> bytes:
    """``data`` with only the holes whose cut removes a cap (the same bytes when all do or there are none)."""
    container = read_container(data)
    holes = container.meta.get("holes")
    if not holes:
        return data
    decoded = load_field(data)
    with one_blas_thread():
        extraction = extract_mesh(decoded.field, CHECK_RESOLUTION, decoded.bound)
    centroids = extraction.vertices[extraction.faces].mean(axis=1)
    reference = (np.ascontiguousarray(unit_mesh.vertices, np.float64), np.ascontiguousarray(unit_mesh.faces, np.int64))
    kept = []
    for loop, points in zip(holes, decoded.holes, strict=True):
        cut = cap_mask(points, centroids, extraction.spacing)
        if cut.any() and np.median(surface_distances(centroids[cut], *reference)[0]) > CAP_CELLS * extraction.spacing:
            kept.append(loop)
    if kept == holes:
        return data
    meta = {key: value for key, value in container.meta.items() if key != "holes"}
    return write_container(Container(meta={**meta, **({"holes": kept} if kept else {})}, tensors=container.tensors))
