"""The rival codec: Draco after the best decimation a user would reach for, searched at a byte budget.

Two decimators: fast-simplification (quadric, ``agg=7``, the library's default) and MeshLab's quadric edge
collapse (pymeshlab ``meshing_decimation_quadric_edge_collapse`` with optimal placement, normal preservation
and planar quadrics). Each decimated mesh is Draco-encoded (DracoPy, compression level 10) at a quantization
of 7-14 bits. At a budget, for each (decimator, quantization) pair the face count is searched to the largest
decimation whose file fits (secant steps on bytes against faces, which is nearly linear, kept inside a
bracket); the pair whose decoded mesh has the lowest Chamfer-L1 against the input is the rival's file.
``quantizations="all"`` tries all 8 per decimator; ``"walk"`` starts at the best of the previous budget and
steps towards fewer or more bits while Chamfer-L1 falls (the curve over bits at a fixed budget has one
minimum: fewer bits buy faces, more bits buy position precision).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import trimesh

from ksc.mesh.metrics import compare_meshes, surface_distances
from ksc.mesh.normalize import Transform
from ksc.mesh.sampling import sample_surface

log = logging.getLogger(__name__)

DECIMATORS = ("fast-simplification", "meshlab")
RIVAL_CACHE = Path(__file__).resolve().parent / ".cache" / "rival"
"""Where :class:`CachedRival` keeps each mesh's results (git-ignored, like ``common.CACHE``)."""
QUANTIZATIONS = tuple(range(7, 15))
DRACO_LEVEL = 10
CURVE_BUDGETS = (2000, 2800, 4000, 5600, 8000, 11300, 16000)
"""The dense Draco curve: 2-16 KB in steps of sqrt(2)."""
FILL = 0.99
"""A search at ksc's bytes stops once its file takes this share of the budget (or the face counts bracket it
within 1 %)."""
SEARCH_STEPS = 12
CURVE_FILL, CURVE_STEPS = 0.96, 3
"""The dense curve's looser search: its points are (bytes, error) pairs wherever they land."""
BITS_OFFSET = 3.5
"""Draco's bytes per face grow about as (bits - 3.5) (armadillo at 4000 faces: 0.70, 1.27, 2.10 at 7, 10, 14)."""
SELECTION_SAMPLES = 2**15
"""Samples each way of the Chamfer-L1 that picks the pair; the chosen file is then scored with ksc.mesh.metrics."""
MIN_FACES = 4


def settings_key() -> str:
    """Everything the rival's results depend on: its settings and the versions of the libraries it runs."""
    from importlib.metadata import version

    libraries = {name: version(name) for name in ("DracoPy", "pymeshlab", "fast-simplification")}
    settings = (DECIMATORS, QUANTIZATIONS, DRACO_LEVEL, CURVE_BUDGETS, FILL, SEARCH_STEPS, CURVE_FILL, CURVE_STEPS)
    return json.dumps({"settings": settings, "libraries": libraries, "samples": SELECTION_SAMPLES})


class DracoRival:
    """Draco + decimation files of one mesh, with every decimation, file and error computed once."""

    def __init__(self, mesh: trimesh.Trimesh):
        self.mesh = mesh
        self.points = np.ascontiguousarray(mesh.vertices, dtype=np.float32)
        self.triangles = np.ascontiguousarray(mesh.faces, dtype=np.int32)
        self._decimated: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        self._files: dict[tuple[str, int, int], bytes] = {}
        self._errors: dict[tuple[str, int, int], float] = {}
        transform = Transform.fit(mesh.vertices)
        self._transform = transform
        self._ref_v = np.ascontiguousarray(transform.to_unit(mesh.vertices), dtype=np.float64)
        self._ref_f = np.ascontiguousarray(mesh.faces, dtype=np.int64)
        unit = trimesh.Trimesh(self._ref_v, self._ref_f, process=False)
        self._ref_samples = sample_surface(unit, SELECTION_SAMPLES, np.random.default_rng(0))

    def decimated(self, decimator: str, faces: int) -> tuple[np.ndarray, np.ndarray]:
        """The mesh decimated by ``decimator`` to about ``faces`` faces (the input itself when it has no more)."""
        faces = min(int(faces), len(self.triangles))
        key = (decimator, faces)
        if key not in self._decimated:
            if faces >= len(self.triangles):
                self._decimated[key] = (self.points, self.triangles)
            else:
                self._decimated[key] = _decimate(decimator, self.points, self.triangles, faces)
        return self._decimated[key]

    def file(self, decimator: str, faces: int, bits: int) -> bytes:
        import DracoPy

        key = (decimator, min(int(faces), len(self.triangles)), bits)
        if key not in self._files:
            points, triangles = self.decimated(decimator, faces)
            self._files[key] = DracoPy.encode(points, triangles, quantization_bits=bits, compression_level=DRACO_LEVEL)
        return self._files[key]

    def fitting(self, decimator: str, bits: int, budget: int, fill: float = FILL, steps: int = SEARCH_STEPS) -> int | None:
        """The largest face target whose file fits ``budget`` bytes (searched, see the module), or None.

        The search stops when a fitting file fills ``fill`` of the budget or after ``steps`` files.
        """
        whole = len(self.triangles)
        if len(self.file(decimator, whole, bits)) <= budget:
            return whole
        low, high = None, whole  # low: a target that fits, high: one that does not
        guess = self._guess(decimator, bits, budget)
        for _ in range(steps):
            guess = int(min(max(guess, MIN_FACES), high - 1))
            size = len(self.file(decimator, guess, bits))
            if size <= budget:
                low = guess
                if size >= fill * budget:
                    break
            else:
                high = guess
            if low is not None and high <= low * 1.01 + 1:
                break
            guess = self._secant(decimator, bits, budget, low, high, fill)
        return low

    def _guess(self, decimator: str, bits: int, budget: int) -> int:
        """A first face target from the bytes per face of the file already made nearest in size and bits,
        scaled to ``bits`` by :data:`BITS_OFFSET`."""
        whole = len(self.triangles)
        made = [(f, b, len(data)) for (d, f, b), data in self._files.items() if d == decimator and f < whole]
        if made:
            faces, other, size = min(made, key=lambda m: abs(math.log(m[2] / budget)) + 0.5 * abs(m[1] - bits))
            return int(faces * budget / size * (other - BITS_OFFSET) / (bits - BITS_OFFSET))
        return int(budget / (0.18 * (bits - BITS_OFFSET)))

    def _secant(self, decimator: str, bits: int, budget: int, low: int | None, high: int, fill: float) -> int:
        """The next face target: on the line through the bracket's files, or through the origin and the
        smallest file too large while none fits yet."""
        aim = (fill + 1.0) / 2.0 * budget
        high_size = len(self.file(decimator, high, bits))
        if low is None:
            return max(MIN_FACES, min(int(high * aim / high_size), high - 1))
        low_size = len(self.file(decimator, low, bits))
        if high_size <= low_size:
            return (low + high) // 2
        target = low + (high - low) * (aim - low_size) / (high_size - low_size)
        return int(min(max(target, low + 1), high - 1))

    def selection_error(self, decimator: str, faces: int, bits: int) -> float:
        """Chamfer-L1 (normalized frame, :data:`SELECTION_SAMPLES` each way) of the decoded file: the pick's criterion."""
        key = (decimator, min(int(faces), len(self.triangles)), bits)
        if key not in self._errors:
            vertices, triangles = self.decoded(*key)
            cand_v = np.ascontiguousarray(self._transform.to_unit(vertices), dtype=np.float64)
            cand_f = np.ascontiguousarray(triangles, dtype=np.int64)
            rng = np.random.default_rng(1)
            cand_samples = sample_surface(trimesh.Trimesh(cand_v, cand_f, process=False), SELECTION_SAMPLES, rng)
            to_cand, _ = surface_distances(self._ref_samples, cand_v, cand_f)
            to_ref, _ = surface_distances(cand_samples, self._ref_v, self._ref_f)
            self._errors[key] = float((to_cand.mean() + to_ref.mean()) / 2.0)
        return self._errors[key]

    def decoded(self, decimator: str, faces: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
        import DracoPy

        mesh = DracoPy.decode(self.file(decimator, faces, bits))
        return np.asarray(mesh.points, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)

    def best(
        self, budget: int, quantizations: str = "all", start_bits: int = 10, fill: float = FILL, steps: int = SEARCH_STEPS
    ) -> dict | None:
        """The rival's file at ``budget`` bytes, scored with :func:`ksc.mesh.metrics.compare_meshes`; None if none fits.

        Returns a row: ``bytes``, ``decimator``, ``draco_bits``, ``faces`` (of the decoded mesh), the metrics
        and ``tried`` (pairs searched).
        """
        candidates = []  # (selection error, decimator, faces, bits)
        for decimator in DECIMATORS:
            if quantizations == "all":
                for bits in QUANTIZATIONS:
                    faces = self.fitting(decimator, bits, budget, fill, steps)
                    if faces is not None:
                        candidates.append((self.selection_error(decimator, faces, bits), decimator, faces, bits))
            else:
                candidates.extend(self._walk(decimator, budget, start_bits, fill, steps))
        if not candidates:
            return None
        _, decimator, faces, bits = min(candidates)
        vertices, triangles = self.decoded(decimator, faces, bits)
        error = compare_meshes(self.mesh, trimesh.Trimesh(vertices, triangles, process=False))
        return {
            "bytes": len(self.file(decimator, faces, bits)),
            "decimator": decimator if faces < len(self.triangles) else "none (whole mesh)",
            "draco_bits": bits,
            "faces": len(triangles),
            "tried": len(candidates),
            **error.to_dict(),
        }

    def _walk(self, decimator: str, budget: int, start_bits: int, fill: float, steps: int) -> list[tuple[float, str, int, int]]:
        """Candidates from ``start_bits`` outwards, each way while the selection error falls."""
        found = {}

        def visit(bits):
            if bits not in found and bits in QUANTIZATIONS:
                faces = self.fitting(decimator, bits, budget, fill, steps)
                found[bits] = None if faces is None else (self.selection_error(decimator, faces, bits), decimator, faces, bits)
            return found.get(bits)

        visit(start_bits)
        for step in (-1, 1):
            bits, previous = start_bits, found[start_bits]
            while True:
                bits += step
                current = visit(bits)
                if current is None or (previous is not None and current[0] >= previous[0]):
                    break
                previous = current
        return [c for c in found.values() if c is not None]

    def curve(self, budgets=CURVE_BUDGETS) -> list[dict]:
        """The rival's best file at each of ``budgets`` (the ``walk`` search, each budget starting from the last's bits)."""
        rows, bits = [], 10
        for budget in budgets:
            row = self.best(budget, "walk", bits, CURVE_FILL, CURVE_STEPS)
            if row is not None:
                rows.append({"budget": budget, **row})
                bits = row["draco_bits"]
        return rows


def _decimate(decimator: str, points: np.ndarray, triangles: np.ndarray, faces: int) -> tuple[np.ndarray, np.ndarray]:
    if decimator == "fast-simplification":
        import fast_simplification

        p, f = fast_simplification.simplify(points, triangles, target_count=faces)
        return np.ascontiguousarray(p, dtype=np.float32), np.ascontiguousarray(f, dtype=np.int32)
    if decimator == "meshlab":
        import pymeshlab

        meshes = pymeshlab.MeshSet()
        meshes.add_mesh(pymeshlab.Mesh(points.astype(np.float64), triangles))
        meshes.meshing_decimation_quadric_edge_collapse(
            targetfacenum=faces, optimalplacement=True, preservenormal=True, planarquadric=True
        )
        result = meshes.current_mesh()
        return (
            np.ascontiguousarray(result.vertex_matrix(), dtype=np.float32),
            np.ascontiguousarray(result.face_matrix(), dtype=np.int32),
        )
    raise ValueError(f"unknown decimator {decimator!r}")


def bd_rate(ours: list[tuple[float, float]], theirs: list[tuple[float, float]]) -> tuple[float, str] | None:
    """Bjøntegaard delta rate of ``ours`` against ``theirs``: (bytes, error) points of two codecs.

    The mean of log(our bytes / their bytes) at equal error, over the log-error range both curves span,
    with log-bytes piecewise linear in log-error on each curve's Pareto front, as exp(mean) - 1: -0.2 means
    a fifth fewer bytes for the same error. Returns (value, kind): kind ``"mean"`` over a shared range,
    ``"at"`` when ``ours`` is one point inside their range (the rate difference at its error), ``"at least"``
    or ``"at most"`` when our points lie beyond their range (worse than their smallest file, or better than
    their largest; the value then compares with that end). None without points.
    """
    ours_front, theirs_front = _front(ours), _front(theirs)
    if not ours_front or not theirs_front:
        return None
    their_errors = [math.log(e) for _, e in theirs_front]
    their_bytes = [math.log(b) for b, _ in theirs_front]
    low, high = min(their_errors), max(their_errors)
    our_errors = [math.log(e) for _, e in ours_front]
    our_bytes = [math.log(b) for b, _ in ours_front]
    shared_low, shared_high = max(low, min(our_errors)), min(high, max(our_errors))
    if shared_low < shared_high:
        grid = np.linspace(shared_low, shared_high, 200)
        gap = np.interp(grid, our_errors[::-1], our_bytes[::-1]) - np.interp(grid, their_errors[::-1], their_bytes[::-1])
        return float(math.expm1(gap.mean())), "mean"
    # One point, or curves that do not overlap: compare at the point of ours nearest their range.
    index = int(np.argmin([max(low - e, e - high, 0.0) for e in our_errors]))
    error, size = our_errors[index], our_bytes[index]
    if error > high:  # worse than their smallest file: they need fewer bytes than that
        return float(math.expm1(size - their_bytes[their_errors.index(high)])), "at least"
    if error < low:  # better than their largest file
        return float(math.expm1(size - their_bytes[their_errors.index(low)])), "at most"
    return float(math.expm1(size - np.interp(error, their_errors[::-1], their_bytes[::-1]))), "at"


def _front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The Pareto front of (bytes, error) points: by bytes rising, each with lower error than every smaller one."""
    front = []
    for size, error in sorted(p for p in points if p[1] > 0 and math.isfinite(p[1])):
        if not front or error < front[-1][1]:
            front.append((size, error))
    return front


class CachedRival:
    """The rival's results for one mesh, kept in ``benchmarks/.cache/rival/`` under :func:`settings_key`:
    the search is deterministic, so a rerun with another preset searches only the new budgets."""

    def __init__(self, path: Path, mesh):
        self.mesh, self.file = mesh, RIVAL_CACHE / f"{path.stem}.json"
        self.key = settings_key()
        self._rival = None
        try:
            stored = json.loads(self.file.read_text())
            self.results = stored if stored.get("key") == self.key else {}
        except (OSError, ValueError):
            self.results = {}
        self.results.setdefault("key", self.key)
        self.results.setdefault("best", {})

    def _search(self) -> DracoRival:
        if self._rival is None:
            self._rival = DracoRival(self.mesh)
        return self._rival

    def best(self, budget: int) -> dict | None:
        if str(budget) not in self.results["best"]:
            self.results["best"][str(budget)] = self._search().best(budget, quantizations="all")
            self._save()
        return self.results["best"][str(budget)]

    def curve(self) -> list[dict]:
        if "curve" not in self.results:
            self.results["curve"] = self._search().curve()
            self._save()
        return [dict(point) for point in self.results["curve"]]

    def file_at(self, budget: int) -> bytes | None:
        """A Draco file like the rival's best at ``budget`` bytes (its decimator and quantization, decimated to the
        face count it decoded to), no larger than the budget; None where nothing fits."""
        found = self.best(budget)
        if found is None:
            return None
        rival = self._search()
        decimator = found["decimator"] if found["decimator"] in DECIMATORS else DECIMATORS[0]  # "none (whole mesh)"
        faces = found["faces"]
        data = rival.file(decimator, faces, found["draco_bits"])
        while len(data) > budget and faces > 4:  # the face target is not stored; the count it gave may land a byte over
            faces = int(faces * 0.99)
            data = rival.file(decimator, faces, found["draco_bits"])
        return data

    def _save(self) -> None:
        from ksc.mesh.io import write_atomic

        self.file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.file, json.dumps(self.results).encode())
