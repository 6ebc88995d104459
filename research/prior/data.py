"""Training samples for the learned-prior experiment, drawn from ``../shared/corpus/`` only.

For each corpus shape: a lattice resolution (16, 24 or 32 cells, by the shape's position in the list), the
active nodes of :mod:`research.prior.grid`, 64 key spheres (``ksc``'s own extraction and rounding), and
points inside fully active cells with their signed distance (positive inside, ksc's convention): a quarter
uniform in the cells, half on the surface plus N(0, 0.05 h), a quarter on the surface plus N(0, 0.3 h).
Meshes get exact distances and winding-number signs (``ksc.encoding.sampling.SignedDistance``); the Thingi10K SDF
networks are evaluated directly (their sign flipped), their surface points found by Newton steps.

Run ``python -m research.prior.data --help``. Shapes land in ``research/prior/.cache/shapes/`` (git-ignored)
with ``used.tsv``, the list of what was used, skipped and why.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import time
import zlib
from pathlib import Path

import numpy as np

from research.prior import grid

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
CORPUS = HERE.parents[2] / "shared" / "corpus"
RESOLUTIONS = (16, 24, 32)
SPHERES = 64
MAX_ACTIVE = 20000


class NetworkDistance:
    """A Thingi10K SDF network as a signed-distance oracle (positive inside) with ksc's oracle interface."""

    closed = False

    def __init__(self, path: Path):
        data = np.load(path)
        self.weights = [(data[f"W{i}"].astype(np.float64), data[f"b{i}"].astype(np.float64)) for i in range(9)]

    def __call__(self, points: np.ndarray) -> np.ndarray:
        out = np.empty(len(points), dtype=np.float64)
        for start in range(0, len(points), 65536):
            h = np.asarray(points[start : start + 65536], dtype=np.float64)
            for w, b in self.weights[:-1]:
                h = np.maximum(h @ w + b, 0.0)
            w, b = self.weights[-1]
            out[start : start + 65536] = -np.tanh(h @ w + b)[:, 0]
        return out.astype(np.float32)

    def project(self, points: np.ndarray, steps: int = 3) -> np.ndarray:
        """Points moved onto the zero level by Newton steps along the gradient (finite differences)."""
        eps = 1e-4
        p = np.asarray(points, dtype=np.float64).copy()
        for _ in range(steps):
            d = self(p).astype(np.float64)
            g = np.stack([(self(p + eps * e) - self(p - eps * e)) / (2 * eps) for e in np.eye(3)], 1)
            p -= (d / np.maximum((g * g).sum(1), 1e-6))[:, None] * g
        return p


def mesh_oracle(path: Path):
    """``(SignedDistance, unit mesh)`` of a mesh file, repaired and normalized as ksc's encoder does."""
    import trimesh

    from ksc.encoding.sampling import SignedDistance
    from ksc.mesh.io import consistently_wound, load_mesh
    from ksc.mesh.normalize import Transform

    mesh, _ = consistently_wound(load_mesh(path))
    transform = Transform.fit(mesh.vertices)
    unit = trimesh.Trimesh(vertices=transform.to_unit(mesh.vertices), faces=mesh.faces, process=False)
    return SignedDistance(unit), unit


def shape_samples(oracle, resolution: int, count: int, rng: np.random.Generator, surface) -> dict:
    """The arrays of one training shape (see the module docstring); ``surface(n)`` draws ``n`` surface points."""
    from ksc.encoding.pipeline import quantized_key_spheres

    h = grid.spacing(resolution)
    node_distance = oracle(grid.lattice_nodes(resolution))
    active = grid.active_mask(node_distance, resolution)
    n_active = int(active.sum())
    if n_active < 64 or n_active > MAX_ACTIVE:
        raise ValueError(f"{n_active} active nodes")
    full = grid.full_cells(active)
    cells = np.argwhere(full)
    if len(cells) == 0:
        raise ValueError("no fully active cell")
    spheres, sphere_codec = quantized_key_spheres(oracle, SPHERES)
    ids = grid.node_ids(active)

    def uniform(n):
        pick = cells[rng.integers(0, len(cells), n)]
        return -grid.BOUND + (pick + rng.uniform(size=(n, 3))) * h

    parts = [uniform(count // 4 * 2)]
    on_surface = surface(count * 2)
    parts.append(on_surface[:count] + rng.normal(scale=0.05 * h, size=(count, 3)))
    parts.append(on_surface[count:] + rng.normal(scale=0.3 * h, size=(count, 3)))
    points = np.concatenate(parts)
    _, fractions, corners = grid.locate(points, resolution, ids)
    keep = (corners >= 0).all(1) & (np.abs(points) < grid.BOUND).all(1)
    points, fractions, corners = points[keep], fractions[keep], corners[keep]
    # A quarter uniform, half near, a quarter farther (each part was drawn with room for the cells it misses).
    quota = {0: count // 4, 1: count // 2, 2: count // 4}
    origin = np.repeat([0, 1, 2], [count // 4 * 2, count, count])[keep]
    chosen = np.concatenate([np.flatnonzero(origin == k)[: quota[k]] for k in quota])
    points, fractions, corners = points[chosen], fractions[chosen], corners[chosen]
    return {
        "resolution": np.int32(resolution),
        "active": np.packbits(active.ravel()),
        "spheres": spheres.astype(np.float32),
        "corners": corners.astype(np.int32),
        "fractions": fractions.astype(np.float32),
        "bound": grid.sphere_bound(points, spheres),
        "sdf": oracle(points).astype(np.float32),
        "n_active": np.int32(n_active),
        "spheres_bytes": np.int32(len(sphere_codec.encode(spheres))),
    }


def corpus_list(networks: int, meshes: int, seed: int) -> list[str]:
    """Corpus files (relative to the corpus folder) for training: a seeded pick of each kind, a fixed order."""
    rows = [line.split("\t") for line in (CORPUS / "MANIFEST.tsv").read_text().splitlines()[1:]]
    nets = sorted(r[0] for r in rows if r[1] == "sdf-network")
    mesh_files = sorted(r[0] for r in rows if r[1] != "sdf-network")
    rng = np.random.default_rng(seed)
    picked = list(rng.choice(nets, min(networks, len(nets)), replace=False)) + list(
        rng.choice(mesh_files, min(meshes, len(mesh_files)), replace=False)
    )
    return sorted(picked, key=lambda name: zlib.crc32(name.encode()))


def build_one(task) -> tuple[str, str]:
    index, name, count, out_dir, extra_root = task
    target = Path(out_dir) / (name.replace("/", "__") + ".npz")
    if target.exists():
        return name, "cached"
    resolution = RESOLUTIONS[index % len(RESOLUTIONS)]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    path = (Path(extra_root) if extra_root else CORPUS) / name
    try:
        if path.suffix == ".npz":
            oracle = NetworkDistance(path)

            def surface(n):
                seeds = rng.uniform(-0.9, 0.9, size=(n * 4, 3))
                near = seeds[np.abs(oracle(seeds)) < 0.1][:n]
                while len(near) < n:
                    near = np.concatenate([near, near])[:n]
                return oracle.project(near)

        else:
            from ksc.mesh.sampling import sample_surface

            oracle, unit = mesh_oracle(path)

            def surface(n):
                return sample_surface(unit, n, rng)

        arrays = shape_samples(oracle, resolution, count, rng, surface)
    except Exception as error:  # noqa: BLE001 - a corpus shape ksc refuses is recorded and skipped
        return name, f"skipped: {type(error).__name__}: {str(error)[:120]}"
    np.savez(target, **arrays)
    return name, f"R={resolution} active={int(arrays['n_active'])} points={len(arrays['sdf'])}"


def build_test_shapes(names: list[str], out: Path, count: int) -> None:
    """The diagnostic only (never a shipped prior): test meshes as training shapes, at 24 and 32 cells."""
    from ksc.mesh.sampling import sample_surface

    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        oracle, unit = mesh_oracle(CORPUS.parent / name)
        for resolution in (24, 32):
            rng = np.random.default_rng(zlib.crc32(name.encode()) + resolution)
            arrays = shape_samples(oracle, resolution, count, rng, lambda n, rng=rng, unit=unit: sample_surface(unit, n, rng))
            np.savez(out / f"{Path(name).stem}-{resolution}.npz", **arrays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", type=int, default=500, help="Thingi10K SDF networks to use")
    parser.add_argument("--meshes", type=int, default=300, help="corpus meshes to use")
    parser.add_argument("--points", type=int, default=12000, help="points per shape")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=CACHE / "shapes")
    parser.add_argument(
        "--test-meshes", nargs="*", help="diagnostic: build these shared/ test meshes instead (never for a shipped prior)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.test_meshes:
        build_test_shapes(args.test_meshes, args.out, args.points)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    names = corpus_list(args.networks, args.meshes, args.seed)
    tasks = [(i, name, args.points, str(args.out), None) for i, name in enumerate(names)]
    start = time.perf_counter()
    lines = []
    with multiprocessing.Pool(args.jobs) as pool:
        for done, (name, status) in enumerate(pool.imap(build_one, tasks, chunksize=4), 1):
            lines.append(f"{name}\t{status}")
            if done % 25 == 0:
                log.info("%d/%d shapes, %.0f s", done, len(tasks), time.perf_counter() - start)
    (args.out / "used.tsv").write_text("file\tstatus\n" + "\n".join(lines) + "\n")
    log.info("done: %d shapes in %.0f s", len(tasks), time.perf_counter() - start)


if __name__ == "__main__":
    main()
