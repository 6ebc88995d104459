"""Does a shipped decoder beat Draco? Fit latents to the test meshes with the decoder frozen, code them, decode,
and score against the full rival's curve.

For each mesh and lattice resolution: the active nodes, 64 key spheres and 48k points (as in training), then
the latents are fitted (Adam, uniform noise of the quantization step's width, ``--rate`` times |z| / step in
the loss), rounded to the step, and the file's bytes counted for real:

- the key spheres as ksc's own sphere codec writes them;
- the active-node bitmap range-coded (``format.rangecoder``'s adaptive binary coder, a context of the six
  causal neighbours);
- the latents as integers, one adaptive range-coded stream per channel (``format.rangecoder.encode_integers``:
  a learned, shipped distribution could only code them in fewer bytes);
- a 64-byte header (magic, version, transform, prior id, resolution, step, face count, CRC), not written.

The decoded surface: the field at the 192^3 nodes inside fully active cells, every other node the sign of its
cell's inactive corners (flood fill from the box), marching cubes, quadric decimation to twice the source's
faces (``ksc.decoding.surface.decimate``), scored by ``ksc.mesh.metrics.compare_meshes``. Draco's Chamfer-L1, p99 and normal
error at the same bytes are interpolated (log-log) on the rival's 2-16 KB curve in
``benchmarks/results/rd.json`` (the full search, MeshLab and fast-simplification at 7-14 bits).

Run ``python -m research.prior.experiment --help``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ksc.format.rangecoder import _Encoder, encode_integers
from research.prior import grid
from research.prior.data import CACHE, mesh_oracle, shape_samples
from research.prior.model import blend, cell_units, load_decoder

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared"
RD = HERE.parents[1] / "benchmarks" / "results" / "rd.json"
SIX = (
    "meshes/bunny.obj",
    "meshes/dragon.obj",
    "meshes/thingi_64764.obj",
    "meshes-wide/homer.obj",
    "meshes-wide/thingi_75496.obj",
    "meshes-wide/thingi_79241.obj",
)
HEADER_BYTES = 64
EXTRACTION = 192


def occupancy_bytes(active: np.ndarray) -> int:
    """Bytes of the active-node bitmap, range-coded with its six causal neighbours as context."""
    padded = np.zeros(tuple(s + 1 for s in active.shape), dtype=np.int64)
    padded[1:, 1:, 1:] = active
    a = padded
    context = (
        a[:-1, 1:, 1:]
        + 2 * a[1:, :-1, 1:]
        + 4 * a[1:, 1:, :-1]
        + 8 * a[:-1, :-1, 1:]
        + 16 * a[:-1, 1:, :-1]
        + 32 * a[1:, :-1, :-1]
    )
    encoder = _Encoder()
    for c, bit in zip(context.ravel().tolist(), active.ravel().tolist(), strict=False):
        encoder.bit(c, int(bit))
    return len(encoder.finish())


def latent_bytes(q: np.ndarray) -> int:
    return sum(len(encode_integers(q[:, c])) for c in range(q.shape[1]))


BIAS_STEP = 2e-3
"""Quantization step of the per-file bias deltas (``--adapt-biases``), in the decoder's units."""


def fit_latents(decoder, samples: dict, steps: int, step_size: float, rate: float, seed: int, adapt_biases: bool = False):
    """Latents ``(n_active, C)`` fitted to ``samples`` with the decoder frozen, or with its biases fitted too.

    Returns the latents and the decoder to decode them with: the shared one, or a copy whose biases carry the
    file's rounded deltas (their coded bytes in ``decoder.delta_bytes``).
    """
    import copy

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    corners = torch.from_numpy(samples["corners"].astype(np.int64))
    fractions = torch.from_numpy(samples["fractions"])
    bound, target = (torch.from_numpy(a) for a in cell_units(samples))
    table = torch.zeros(int(samples["n_active"]), decoder.config["channels"], requires_grad=True)
    decoder = copy.deepcopy(decoder)
    biases = [m.bias for m in decoder.net if isinstance(m, torch.nn.Linear)]
    shared = [b.detach().clone() for b in biases]
    for p in decoder.parameters():
        p.requires_grad_(False)
    for b in biases:
        b.requires_grad_(adapt_biases)
    groups = [{"params": [table], "scale": 1.0}] + ([{"params": biases, "scale": 0.1}] if adapt_biases else [])
    optimizer = torch.optim.Adam(groups, lr=2e-2)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = 2e-2 * group["scale"] * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * step / steps)))
        index = torch.from_numpy(rng.integers(0, len(target), 8192))
        noisy = table + (torch.rand_like(table) - 0.5) * step_size
        prediction = decoder(blend(noisy, corners[index], fractions[index]), fractions[index], bound[index])
        loss = (prediction - target[index]).abs().mean() + rate * table.abs().mean() / step_size
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    decoder.delta_bytes = 0
    if adapt_biases:
        with torch.no_grad():
            deltas = [torch.round((b - s) / BIAS_STEP) for b, s in zip(biases, shared, strict=True)]
            for b, s, d in zip(biases, shared, deltas, strict=True):
                b.copy_(s + d * BIAS_STEP)
        decoder.delta_bytes = len(encode_integers(torch.cat(deltas).numpy().astype(np.int64)))
    return table.detach().numpy(), decoder


def fit_error(decoder, samples: dict, latents: np.ndarray) -> float:
    """Mean |predicted - true| signed distance over h on ``samples`` (all of them) for the given latents."""
    bound, target = cell_units(samples)
    table = torch.from_numpy(latents.astype(np.float32))
    fractions = torch.from_numpy(samples["fractions"])
    with torch.no_grad():
        latent = blend(table, torch.from_numpy(samples["corners"].astype(np.int64)), fractions)
        prediction = decoder(latent, fractions, torch.from_numpy(bound)).numpy()
    return float(np.abs(prediction - target).mean())


def decode_surface(decoder, latents: np.ndarray, active: np.ndarray, resolution: int, spheres: np.ndarray):
    """Marching-cubes mesh ``(vertices, faces)`` in the normalized frame of the coded lattice."""
    from skimage.measure import marching_cubes

    h = grid.spacing(resolution)
    axis = np.linspace(-grid.BOUND, grid.BOUND, EXTRACTION)
    nodes = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    ids = grid.node_ids(active)
    cells, fractions, corners = grid.locate(nodes, resolution, ids)
    full = (corners >= 0).all(1)
    outside = grid.outside_by_flood_fill(active)
    corner_nodes = cells[:, None, :] + grid.CORNERS[None]
    corner_outside = outside[corner_nodes[..., 0], corner_nodes[..., 1], corner_nodes[..., 2]]
    inactive = corners < 0
    # A cell with an inactive corner holds no surface: all of it has that corner's side.
    votes = (corner_outside & inactive).sum(1) * 2 - inactive.sum(1)
    values = np.where(votes > 0, -h, h).astype(np.float32)
    table = torch.from_numpy(latents.astype(np.float32))
    with torch.no_grad():
        evaluated = np.flatnonzero(full)
        for start in range(0, len(evaluated), 262144):
            pick = evaluated[start : start + 262144]
            f = torch.from_numpy(fractions[pick])
            bound = torch.from_numpy(grid.sphere_bound(nodes[pick], spheres) / h)
            values[pick] = decoder(blend(table, torch.from_numpy(corners[pick]), f), f, bound).numpy() * h
    volume = values.reshape(EXTRACTION, EXTRACTION, EXTRACTION)
    step = axis[1] - axis[0]
    vertices, faces, _, _ = marching_cubes(volume, 0.0, spacing=(step, step, step))
    return vertices - grid.BOUND, faces.astype(np.int64)


def draco_at(curves: list[dict], mesh: str, size: float) -> dict:
    """Draco's errors at ``size`` bytes, log-log interpolated on its curve (clamped to the curve's ends)."""
    points = sorted((c for c in curves if c["mesh"] == mesh), key=lambda c: c["bytes"])
    x = np.log([p["bytes"] for p in points])
    out = {}
    for key in ("chamfer_l1", "p99", "normal_error"):
        out[key] = float(np.exp(np.interp(np.log(size), x, np.log([p[key] for p in points]))))
    return out


def run(args) -> list[dict]:
    import trimesh

    from ksc.decoding.surface import FACES_PER_SOURCE_FACE, decimate
    from ksc.mesh.io import load_mesh
    from ksc.mesh.metrics import compare_meshes
    from ksc.mesh.normalize import Transform
    from ksc.mesh.sampling import sample_surface

    decoder = load_decoder(args.decoder)
    decoder.eval()
    rd = json.loads(RD.read_text())
    rows = []
    for name in args.meshes:
        path = SHARED / name
        if not path.exists():
            log.warning("%s is missing: skipped", path)
            continue
        original = load_mesh(path)
        oracle, unit = mesh_oracle(path)
        transform = Transform.fit(original.vertices)
        mesh_key = Path(name).name
        current = next(r for r in rd["rows"] if r["mesh"] == mesh_key)
        for resolution in args.resolutions:
            start = time.perf_counter()
            rng = np.random.default_rng(0)
            samples = shape_samples(
                oracle, resolution, args.points, rng, lambda n, unit=unit, rng=rng: sample_surface(unit, n, rng)
            )
            spheres = samples["spheres"].astype(np.float64)
            sphere_bytes = int(samples["spheres_bytes"])
            n = int(resolution) + 1
            active = np.unpackbits(samples["active"])[: n**3].reshape(n, n, n).astype(bool)
            occupancy = occupancy_bytes(active)
            for step_size in args.steps_sizes:
                latents, fitted = fit_latents(decoder, samples, args.fit_steps, step_size, args.rate, 0, args.adapt_biases)
                q = np.rint(latents / step_size).astype(np.int64)
                coded = latent_bytes(q)
                size = HEADER_BYTES + sphere_bytes + occupancy + coded + fitted.delta_bytes
                vertices, faces = decode_surface(fitted, q * step_size, active, resolution, spheres)
                vertices, faces = decimate(vertices, faces, FACES_PER_SOURCE_FACE * len(original.faces))
                decoded = trimesh.Trimesh(transform.to_original(vertices), faces, process=False)
                error = compare_meshes(original, decoded)
                draco = draco_at(rd["curves"], mesh_key, size)
                row = {
                    "mesh": mesh_key,
                    "resolution": resolution,
                    "step": step_size,
                    "bytes": size,
                    "spheres_bytes": sphere_bytes,
                    "occupancy_bytes": occupancy,
                    "latent_bytes": coded,
                    "delta_bytes": fitted.delta_bytes,
                    "fit_l1_h": fit_error(fitted, samples, q * step_size),
                    "active": int(active.sum()),
                    "nonzero": float((q != 0).mean()),
                    **error.to_dict(),
                    "draco_chamfer_l1": draco["chamfer_l1"],
                    "draco_p99": draco["p99"],
                    "draco_normal_error": draco["normal_error"],
                    "chamfer_ratio": error.chamfer_l1 / draco["chamfer_l1"],
                    "p99_ratio": error.p99 / draco["p99"],
                    "normal_ratio": error.normal_error / draco["normal_error"],
                    "ksc_default_bytes": current["bytes"],
                    "ksc_default_chamfer_l1": current["chamfer_l1"],
                    "seconds": time.perf_counter() - start,
                }
                rows.append(row)
                log.info(
                    "%s R=%d step=%.2f: %d B (spheres %d, occupancy %d, latents %d), fit %.4f h, "
                    "CD %.5f = %.2fx Draco, p99 %.2fx, NE %.2fx",
                    mesh_key,
                    resolution,
                    step_size,
                    size,
                    sphere_bytes,
                    occupancy,
                    coded,
                    row["fit_l1_h"],
                    error.chamfer_l1,
                    row["chamfer_ratio"],
                    row["p99_ratio"],
                    row["normal_ratio"],
                )
                start = time.perf_counter()
    return rows


def markdown(rows: list[dict], title: str, command: str) -> str:
    """The rows as a Markdown table, and per mesh the point nearest each of 5, 7 and 10 KB."""
    lines = [
        f"# {title}",
        "",
        f"`{command}`",
        "",
        "| mesh | R | step | bytes | spheres | occupancy | latents | deltas | nonzero | fit L1/h "
        "| Chamfer-L1 | x Draco | p99 x Draco | NE x Draco |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mesh']} | {r['resolution']} | {r['step']:g} | {r['bytes']} | {r['spheres_bytes']} | {r['occupancy_bytes']} "
            f"| {r['latent_bytes']} | {r['delta_bytes']} | {r['nonzero']:.2f} | {r['fit_l1_h']:.4f} "
            f"| {r['chamfer_l1']:.5f} | {r['chamfer_ratio']:.2f} "
            f"| {r['p99_ratio']:.2f} | {r['normal_ratio']:.2f} |"
        )
    curves = json.loads(RD.read_text())["curves"]
    lines += [
        "",
        "Nearest point to each target size (ratios against Draco at that point's own bytes):",
        "",
        "| mesh | ~5 KB | ~7 KB | ~10 KB | ksc 0.15 default (bytes, x Draco) |",
        "|---|---|---|---|---|",
    ]
    for mesh in dict.fromkeys(r["mesh"] for r in rows):
        mine = [r for r in rows if r["mesh"] == mesh]
        cells = []
        for target in (5000, 7000, 10000):
            r = min(mine, key=lambda r, target=target: abs(np.log(r["bytes"] / target)))
            cells.append(f"{r['bytes']} B: CD {r['chamfer_ratio']:.2f}x, p99 {r['p99_ratio']:.2f}x, NE {r['normal_ratio']:.2f}x")
        d = draco_at(curves, mesh, mine[0]["ksc_default_bytes"])
        cells.append(f"{mine[0]['ksc_default_bytes']} B: CD {mine[0]['ksc_default_chamfer_l1'] / d['chamfer_l1']:.2f}x")
        lines.append(f"| {mesh} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decoder", type=Path, default=CACHE / "run" / "decoder.npz")
    parser.add_argument("--meshes", nargs="*", default=list(SIX))
    parser.add_argument("--resolutions", type=int, nargs="*", default=[24, 32])
    parser.add_argument("--steps-sizes", type=float, nargs="*", default=[0.5, 1.0])
    parser.add_argument("--rate", type=float, default=2e-3)
    parser.add_argument("--fit-steps", type=int, default=1500)
    parser.add_argument("--adapt-biases", action="store_true", help="variant: per-file deltas of the decoder's biases too")
    parser.add_argument("--points", type=int, default=48000)
    parser.add_argument("--out", type=Path, help="write the rows as JSON here, and a Markdown table beside it")
    parser.add_argument("--title", default="Learned prior: latents on a sparse lattice, a shared decoder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(2)
    rows = run(args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps({"decoder": str(args.decoder), "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1)
        )
        command = "python -m research.prior.experiment " + " ".join(sys.argv[1:])
        args.out.with_suffix(".md").write_text(markdown(rows, args.title, command))


if __name__ == "__main__":
    main()
