"""Train the experiment's shared decoder on corpus shapes, auto-decoder style (DeepSDF): every training
shape has its own latent lattice, optimized jointly with the decoder, then thrown away.

Each step draws ``--shapes`` shapes and ``--points`` points of each; the loss is L1 on the clipped signed
distance over h, plus ``--rate`` times the mean |latent| (a Laplace prior that keeps the latents compact and
cheap to code), with uniform noise of a random width in [0, ``--noise``] added to the latents (a proxy for
their quantization, so the decoder learns to read rounded latents). A checkpoint is written every
``--checkpoint-s`` seconds and the run resumes from it. Run ``python -m research.prior.train --help``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from research.prior.data import CACHE
from research.prior.model import PriorDecoder, blend, cell_units, save_decoder

log = logging.getLogger(__name__)


class Shapes:
    """Every cached shape's points in flat arrays, corner rows shifted into one latent table."""

    def __init__(self, folders: list[Path], device: torch.device):
        files = [f for folder in folders for f in sorted(folder.glob("*.npz"))]
        corners, fractions, bound, target, starts, offsets, self.names = [], [], [], [], [0], [0], []
        for f in files:
            d = np.load(f)
            corners.append(d["corners"])
            fractions.append(d["fractions"])
            shape_bound, shape_target = cell_units(d)
            bound.append(shape_bound)
            target.append(shape_target)
            offsets.append(offsets[-1] + int(d["n_active"]))
            starts.append(starts[-1] + len(d["sdf"]))
            self.names.append(f.name)
        self.device = device
        self.corners = torch.from_numpy(np.concatenate(corners).astype(np.int64)).to(device)
        self.fractions = torch.from_numpy(np.concatenate(fractions)).to(device)
        self.bound = torch.from_numpy(np.concatenate(bound)).to(device)
        self.target = torch.from_numpy(np.concatenate(target)).to(device)
        self.starts = np.array(starts)
        self.offsets = np.array(offsets)
        self.rows = int(offsets[-1])
        self.weights = None

    def __len__(self) -> int:
        return len(self.names)

    def batch(self, rng: np.random.Generator, shapes: int, points: int):
        """``(picked shapes, point indices (shapes * points,), corner rows (N, 8) into the picked shapes' rows
        laid end to end)``."""
        picked = rng.choice(len(self), shapes, replace=False, p=self.weights)
        lo, hi = self.starts[picked], self.starts[picked + 1]
        index = (lo[:, None] + (rng.uniform(size=(shapes, points)) * (hi - lo)[:, None]).astype(np.int64)).ravel()
        sizes = self.offsets[picked + 1] - self.offsets[picked]
        block = np.repeat(np.concatenate([[0], np.cumsum(sizes)[:-1]]), points)
        index = torch.from_numpy(index).to(self.device)
        return picked, index, self.corners[index] + torch.from_numpy(block).to(self.device)[:, None]


class BlockAdam:
    """Adam over the rows of a latent table, updating only the picked shapes' rows (contiguous blocks), with
    each shape's own step count for the bias correction."""

    def __init__(self, rows: int, channels: int, shapes: int, lr: float, device: torch.device, betas=(0.9, 0.999), eps=1e-8):
        self.m = torch.zeros(rows, channels, device=device)
        self.v = torch.zeros(rows, channels, device=device)
        self.visits = np.zeros(shapes, dtype=np.int64)
        self.lr, self.betas, self.eps = lr, betas, eps

    def step(self, table: torch.Tensor, offsets: np.ndarray, picked: np.ndarray, grad: torch.Tensor) -> None:
        b1, b2 = self.betas
        at = 0
        for shape in picked.tolist():
            lo, hi = int(offsets[shape]), int(offsets[shape + 1])
            g = grad[at : at + hi - lo]
            at += hi - lo
            self.visits[shape] += 1
            t = self.visits[shape]
            m, v = self.m[lo:hi], self.v[lo:hi]
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denominator = (v / (1 - b2**t)).sqrt_().add_(self.eps)
            table[lo:hi].addcdiv_(m, denominator, value=-self.lr / (1 - b1**t))

    def state_dict(self) -> dict:
        return {"m": self.m, "v": self.v, "visits": self.visits, "lr": self.lr}

    def load_state_dict(self, state: dict) -> None:
        self.m, self.v, self.visits = state["m"], state["v"], state["visits"]


def train(args) -> None:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    folders = [args.shapes_dir] + list(args.extra)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    data = Shapes(folders, device)
    if args.extra_share:
        # The diagnostic: the extra folder's shapes (the last ones) drawn with this share of the picks.
        extra = sum(1 for folder in args.extra for _ in folder.glob("*.npz"))
        base = len(data) - extra
        data.weights = np.r_[np.full(base, (1 - args.extra_share) / base), np.full(extra, args.extra_share / extra)]
    log.info("%d shapes, %d points, %d latent rows", len(data), len(data.target), data.rows)
    decoder = PriorDecoder(args.channels, args.hidden, args.layers).to(device)
    table = (torch.randn(data.rows, args.channels) * 0.01).to(device)
    opt_decoder = torch.optim.Adam(decoder.parameters(), lr=args.lr)
    opt_latent = BlockAdam(data.rows, args.channels, len(data), args.latent_lr, device)
    step = 0
    checkpoint = args.out / "checkpoint.pt"
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False, map_location=device)
        decoder.load_state_dict(state["decoder"])
        table = state["table"]
        opt_decoder.load_state_dict(state["opt_decoder"])
        opt_latent.load_state_dict(state["opt_latent"])
        if len(table) < data.rows:  # shapes added after the checkpoint (the diagnostic): fresh rows at the end
            added = data.rows - len(table)
            table = torch.cat([table, (torch.randn(added, args.channels) * 0.01).to(device)])
            opt_latent.m = torch.cat([opt_latent.m, torch.zeros(added, args.channels, device=device)])
            opt_latent.v = torch.cat([opt_latent.v, torch.zeros(added, args.channels, device=device)])
            opt_latent.visits = np.r_[opt_latent.visits, np.zeros(len(data) - len(opt_latent.visits), dtype=np.int64)]
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        step = state["step"]
        log.info("resumed at step %d", step)
    last_save, start, running = time.perf_counter(), time.perf_counter(), []
    while step < args.steps:
        scale = 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for group in opt_decoder.param_groups:
            group["lr"] = args.lr * scale
        opt_latent.lr = args.latent_lr * scale
        picked, index, corners = data.batch(rng, args.shapes, args.points)
        block = torch.cat([table[data.offsets[s] : data.offsets[s + 1]] for s in picked.tolist()]).requires_grad_(True)
        width = float(rng.uniform(0, args.noise))
        noisy = block + (torch.rand_like(block) - 0.5) * width
        latent = blend(noisy, corners, data.fractions[index])
        prediction = decoder(latent, data.fractions[index], data.bound[index])
        fit = (prediction - data.target[index]).abs().mean()
        loss = fit + args.rate * block.abs().mean()
        opt_decoder.zero_grad()
        loss.backward()
        opt_decoder.step()
        opt_latent.step(table, data.offsets, picked, block.grad)
        step += 1
        running.append(float(fit.detach()))
        if step % 200 == 0:
            log.info(
                "step %d fit %.4f |z| %.3f %.1f ms/step",
                step,
                np.mean(running),
                float(block.detach().abs().mean()),
                1000 * (time.perf_counter() - start) / 200,
            )
            running, start = [], time.perf_counter()
        if time.perf_counter() - last_save > args.checkpoint_s or step == args.steps:
            torch.save(
                {
                    "decoder": decoder.state_dict(),
                    "table": table,
                    "opt_decoder": opt_decoder.state_dict(),
                    "opt_latent": opt_latent.state_dict(),
                    "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                    "step": step,
                },
                checkpoint,
            )
            last_save = time.perf_counter()
            digest = save_decoder(decoder, args.out / "decoder.npz", steps=step)
            (args.out / "decoder.json").write_text(
                json.dumps(
                    {
                        "sha256": digest,
                        "steps": step,
                        "shapes": data.names,
                        "args": {k: str(v) for k, v in vars(args).items()},
                        "latent_mean_abs": table.abs().mean(0).tolist(),
                    },
                    indent=1,
                )
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes-dir", type=Path, default=CACHE / "shapes")
    parser.add_argument("--extra", type=Path, nargs="*", default=[], help="more shape folders (the diagnostic's test meshes)")
    parser.add_argument("--extra-share", type=float, default=0.0, help="share of the picks drawn from --extra's shapes")
    parser.add_argument("--out", type=Path, default=CACHE / "run")
    parser.add_argument("--steps", type=int, default=30000)
    parser.add_argument("--shapes", type=int, default=8)
    parser.add_argument("--points", type=int, default=1024)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=96)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--latent-lr", type=float, default=1e-2)
    parser.add_argument("--rate", type=float, default=1e-3)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--device", default="auto", help="'auto' (CUDA when available), 'cpu', 'cuda'; shipped weights come from 'cpu'"
    )
    parser.add_argument("--checkpoint-s", type=float, default=120)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    train(args)


if __name__ == "__main__":
    main()
