"""``.ksc`` bytes -> network -> mesh in the original coordinates, in numpy (no torch).

The network is rebuilt as a :class:`ksc.models.runtime.SphereField` from the file
alone, its zero level extracted by marching cubes on the narrow band of grid
blocks it crosses (:mod:`ksc.decoding.extract`), decimated to the face count the file
records for its source mesh (twice it) and given the field's normals
(:mod:`ksc.decoding.surface`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import numpy as np

from ksc.decoding.config import DEFAULT_RESOLUTION, MAX_RESOLUTION, MIN_RESOLUTION
from ksc.decoding.extract import Extraction, extract_mesh
from ksc.decoding.surface import FACES_PER_SOURCE_FACE, decimate, field_normals, mesh_normals
from ksc.errors import KscFormatError, KscInputError
from ksc.format import Container, read_container
from ksc.format.layout import model_from_map
from ksc.mesh.holes import cut_holes, decode_holes
from ksc.mesh.normalize import Transform
from ksc.mesh.sheets import MIN_SHEET_FACES, collapse_shell, min_resolution
from ksc.mesh.topology import compact
from ksc.models import model_of_format
from ksc.models.config import ModelConfig
from ksc.models.runtime import SphereField, one_blas_thread
from ksc.timing import timed

log = logging.getLogger(__name__)

FOURIER_MAJOR = 3
"""The first format version whose ``model`` has ``frequencies``."""
FEATURE_DIM_MAJOR = 4
"""The first format version whose ``model`` has ``feature_dim``; older files mean the paper's 29."""
PAPER_FEATURE_DIM = 29
WRITTEN_MODEL_FIELDS = ("features", "spheres", "layers", "width", "activation")
"""The ``model`` fields every format version stores (``weighting`` may be absent before 3.x: it then means
``paper``; ``frequencies`` and ``feature_dim`` are checked per version)."""
STAGES = ("reading", "network", "marching cubes", "holes", "sheet", "decimation", "normals")
"""The stages a decode's :attr:`Decoded.timings` names: the container and the rebuilt network, the network on
the band of grid blocks the surface may cross (the octree's search included), the slabs' node values,
marching cubes and their welding, the holes' cut, a sheet's shell taken to one side, the decimation, and the
normals from the field's gradient."""
MAX_FACES = 50_000_000
"""Most faces ``faces=`` may ask for (marching cubes at 1024^3 gives a few tens of millions at most)."""


@dataclass
class DecodedField:
    """A network rebuilt from a file, with the frame it lives in."""

    field: SphereField
    config: ModelConfig
    transform: Transform
    bound: float
    container: Container
    holes: list[np.ndarray] = dataclasses.field(default_factory=list)
    """The input's boundary loops (K, 3) in the normalized frame, whose caps a decode cuts (format 5.1)."""
    sheet: float | None = None
    """For a sheet, the half-thickness of the shell the network describes (format 5.1; ``ksc.mesh.sheets``)."""


def load_field(data: bytes) -> DecodedField:
    """Rebuild the network from ``.ksc`` bytes alone; KscFormatError if the file does not describe one."""
    container = read_container(data)
    meta = container.meta
    transform = _transform(meta.get("transform"))
    bound = meta.get("bound")
    if not isinstance(bound, float) or not 1.0 <= bound <= 2.0:
        raise KscFormatError(f"header field 'bound' must be a float in [1, 2], got {bound!r}")
    config = _model_config(meta.get("model"), container.version[0])
    tensors = container.tensor_map()
    if "spheres" in tensors and np.any(tensors["spheres"][:, 3] < 0.0):
        raise KscFormatError("tensor 'spheres' has a negative radius")
    field = model_of_format(container.version[0]).load("runtime")(config, tensors)
    holes = decode_holes(meta.get("holes", []), bound)
    return DecodedField(
        field=field, config=config, transform=transform, bound=bound, container=container, holes=holes, sheet=meta.get("sheet")
    )


VERIFY_PROBES = 9  # nodes per axis of the small grid verify() runs the network on


def verify(data: bytes) -> DecodedField:
    """Check ``.ksc`` bytes without decoding a mesh.

    The checksum, every header field and limit, tensor shapes against the
    model, and a run of the network on a small grid, whose values must be
    finite. Any problem raises KscFormatError; the rebuilt network is returned.
    """
    decoded = load_field(data)
    axis = np.linspace(-decoded.bound, decoded.bound, VERIFY_PROBES, dtype=np.float32)
    probes = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    with np.errstate(over="ignore", invalid="ignore"):
        values = decoded.field(probes)
    if not np.all(np.isfinite(values)):
        raise KscFormatError("the network gives non-finite values")
    return decoded


def source_faces(container: Container) -> int | None:
    """The face count of the mesh the file was encoded from, as its header records it (None if it does not)."""
    source = container.meta.get("source")
    faces = source.get("faces") if isinstance(source, dict) else None
    return faces if isinstance(faces, int) and not isinstance(faces, bool) and 0 < faces <= MAX_FACES else None


@dataclass
class Decoded:
    """A decoded mesh and how it was made.

    Attributes
    ----------
    vertices : (V, 3) float64
        In the input's original coordinates.
    faces : (F, 3) int64
        Outward-facing triangles.
    normals : (V, 3) float64
        Unit vertex normals from the field's gradient (a sheet's: from its triangles).
    extraction : Extraction
        The marching-cubes mesh's statistics (its faces before decimation: ``extraction.faces``).
    network : DecodedField
        The network it was extracted from, with its frame (``network.transform``) and key spheres.
    timings : dict of str to float
        Seconds per stage (:data:`STAGES`; ``benchmarks/decode.py`` tabulates them).
    """

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    extraction: Extraction
    network: DecodedField
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def mesh(self):
        """The mesh as a ``trimesh.Trimesh`` with its vertex normals."""
        import trimesh

        return trimesh.Trimesh(vertices=self.vertices, faces=self.faces, vertex_normals=self.normals, process=False)


def decode(data: bytes, resolution: int = DEFAULT_RESOLUTION, faces: int | None = None, dense: bool = False) -> Decoded:
    """Decode ``.ksc`` bytes into a mesh in the input's original coordinates.

    Parameters
    ----------
    data : bytes
        A ``.ksc`` file's contents.
    resolution : int
        Grid nodes per axis for marching cubes (16..1024).
    faces : int, optional
        Faces of the output: None decimates to twice the source mesh's count
        that the file records (the marching-cubes mesh when it records none or
        has fewer), 0 keeps the marching-cubes mesh, N decimates to about N.
    dense : bool
        Evaluate every grid node instead of only the blocks near the surface
        (same mesh, many more network calls; kept for comparison).
    """
    if not isinstance(resolution, int) or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise KscInputError(f"resolution must be an integer in [{MIN_RESOLUTION}, {MAX_RESOLUTION}], got {resolution!r}")
    if faces is not None and (not isinstance(faces, int) or isinstance(faces, bool) or not 0 <= faces <= MAX_FACES):
        raise KscInputError(f"faces must be an integer in [0, {MAX_FACES}] (0: the marching-cubes mesh), got {faces!r}")
    timings: dict[str, float] = {}
    with timed(timings, "reading"):
        decoded = load_field(data)
    if decoded.sheet is not None and resolution < min_resolution(decoded.sheet, decoded.bound):
        log.warning(
            "a sheet decodes on at least %d nodes per axis (a coarser grid tears it): using %d, not %d",
            *(min_resolution(decoded.sheet, decoded.bound),) * 2,
            resolution,
        )
        resolution = min_resolution(decoded.sheet, decoded.bound)
    with one_blas_thread():
        extraction = extract_mesh(decoded.field, resolution, decoded.bound, dense=dense)
        timings.update(extraction.timings)
        vertices, triangles = extraction.vertices, extraction.faces
        with timed(timings, "holes"):
            if decoded.holes:
                vertices, triangles = compact(vertices, cut_holes(vertices, triangles, decoded.holes, extraction.spacing))
        with timed(timings, "sheet"):
            if decoded.sheet is not None:
                shell_normals = field_normals(decoded.field, vertices)
                vertices, triangles = collapse_shell(vertices, triangles, shell_normals, decoded.sheet)
        if faces is None:
            source = source_faces(decoded.container)
            faces = FACES_PER_SOURCE_FACE * source if source else 0
            if faces and decoded.sheet is not None:
                faces = max(faces, MIN_SHEET_FACES)
        with timed(timings, "decimation"):
            if faces and faces < len(triangles):
                vertices, triangles = decimate(vertices, triangles, faces, finish=decoded.sheet is None)
        with timed(timings, "normals"):
            if decoded.sheet is None:
                normals = field_normals(decoded.field, vertices)
            else:  # on the sheet itself the field peaks: its gradient says nothing there
                normals = mesh_normals(vertices, triangles)
    log.info("seconds per stage: %s", ", ".join(f"{stage} {timings.get(stage, 0.0):.2f}" for stage in STAGES))
    return Decoded(
        vertices=decoded.transform.to_original(vertices),
        faces=triangles,
        normals=normals,
        extraction=extraction,
        network=decoded,
        timings=timings,
    )


def decode_mesh(data: bytes, resolution: int = DEFAULT_RESOLUTION, faces: int | None = None, dense: bool = False):
    """The mesh of :func:`decode` as a ``trimesh.Trimesh``."""
    return decode(data, resolution, faces, dense).mesh


def _model_config(section, major: int) -> ModelConfig:
    """The network's configuration from the header's ``model`` map of a format ``major`` file.

    ``frequencies`` (Fourier features of the query point) came with format 3.0
    and ``feature_dim`` (values per sphere feature) with 4.0: a file of such a
    version must state the field, and an older file cannot have it. The fields
    of :data:`WRITTEN_MODEL_FIELDS` are required: ksc's defaults change between
    versions (0.1 had 128 spheres), so a file must not be read with them.
    """
    if not isinstance(section, dict):
        raise KscFormatError("header field 'model' is missing or not a map")
    missing = [name for name in WRITTEN_MODEL_FIELDS if name not in section]
    if missing:  # every writer stored them: a file must not take its network from this reader's defaults
        raise KscFormatError(f"header field 'model' lacks {', '.join(missing)}")
    for name, since, before in (("frequencies", FOURIER_MAJOR, 0), ("feature_dim", FEATURE_DIM_MAJOR, PAPER_FEATURE_DIM)):
        if major < since:
            if name in section:
                raise KscFormatError(f"header field 'model' has {name!r}, which format {major}.x does not define")
            section = {**section, name: before}  # the network those versions wrote
        elif name not in section:
            raise KscFormatError(f"header field 'model' lacks {name!r}, which format {major}.x requires")
    return model_from_map(section)


def _transform(section) -> Transform:
    if not isinstance(section, dict):
        raise KscFormatError("header field 'transform' is missing or not a map")
    center, scale = section.get("center"), section.get("scale")
    if not isinstance(center, list) or len(center) != 3 or not all(isinstance(v, float) and math.isfinite(v) for v in center):
        raise KscFormatError(f"transform.center must be 3 finite floats, got {center!r}")
    if not isinstance(scale, float) or not math.isfinite(scale) or scale <= 0.0:
        raise KscFormatError(f"transform.scale must be a positive finite float, got {scale!r}")
    return Transform(center=np.array(center, dtype=np.float64), scale=scale)
