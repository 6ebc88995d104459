"""Mesh -> ``.ksc`` bytes: normalize, sample, pick key spheres, train, quantize."""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import trimesh

from ksc import __version__
from ksc.encoding.backprop import PointTable
from ksc.encoding.budget import fit_bytes, fit_width_to_budget
from ksc.encoding.check import check_file
from ksc.encoding.config import NEAR_SIGMA, EncodeOptions, TrainConfig
from ksc.encoding.device import resolve_device
from ksc.encoding.holes import keep_cutting_holes
from ksc.encoding.quantize import quantization_aware_finetune
from ksc.encoding.sampling import SdfSamples, ShellDistance, SignedDistance, sample_sdf
from ksc.encoding.spheres import NoVolumeError, extract_key_spheres, grid_lattice
from ksc.encoding.step_allocation import allocate_steps
from ksc.encoding.threads import torch_threads, training_threads
from ksc.encoding.train import fit
from ksc.errors import KscInputError
from ksc.format import ArithmeticUniformCodec, Container, SortedUniformCodec, TensorRecord, write_container
from ksc.mesh.holes import encode_holes
from ksc.mesh.io import consistently_wound
from ksc.mesh.normalize import Transform
from ksc.mesh.sheets import THICKNESS
from ksc.models.config import ModelConfig
from ksc.models.network import KeySphereNet
from ksc.timing import timed

log = logging.getLogger(__name__)

DOMAIN_BOUND = 1.05
"""Half-size of the box the network is trained and decoded in: the mesh fills
[-1, 1]^3, and the margin lets marching cubes close surfaces that touch it."""

DIVERGED_MAGNITUDE = 6e4
"""A trained weight this large means the training diverged (they are O(1))."""
STEP_FACTOR = 1.08
"""Every weight tensor's quantization step is this much coarser than its (allocated) RMS step at the file's
bits, ~0.11 bits a weight fewer: SOAP's weights cost ~2 % more bytes than Adam's at the same RMS step
(benchmarks/results/encode-versions-steps.md)."""
RADIUS_BITS = 8
"""Radii are stored as multiples of 1/255: they only shape the spheres' weights, and the
network is trained on the rounded values."""


@dataclass(frozen=True, kw_only=True)
class EncodeResult:
    """The file's bytes and what it took to make them."""

    data: bytes
    spheres: int
    stored_parameters: int
    final_loss: float
    seconds: float
    weight_bits: int
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage of the encode (:data:`STAGES` order; ``benchmarks/encode_profile.py``)."""


STAGES = (
    "repair",
    "normalize",
    "key spheres",
    "distances",
    "signs",
    "sampling",
    "training",
    "step allocation",
    "fine-tuning",
    "writing",
    "self-check",
)
"""The stages an encode's :attr:`EncodeResult.timings` names: winding repair, normalization and the distance
tree, key spheres (their grid queries included), the training points' distances and winding-number signs and
the rest of their sampling, the float training, the per-tensor steps, quantization-aware fine-tuning, the
container and the self-check of the file."""


@dataclass(kw_only=True)
class TrainedMesh:
    """A float network fitted to one mesh, ready to be quantized at any bit width."""

    model: KeySphereNet
    samples: SdfSamples
    transform: Transform
    sphere_codec: SortedUniformCodec
    options: EncodeOptions
    device: torch.device
    source: dict
    final_loss: float
    started: float
    step_scales: dict[str, float]
    """Each trained tensor's step as a multiple of its RMS step (``ksc.encoding.step_allocation``; all 1 without allocation)."""
    unit_mesh: trimesh.Trimesh
    """The (repaired) input in the normalized frame, which :func:`encode_mesh` checks the file against."""
    threads: int = 1
    """CPU cores of the training and fine-tuning (:func:`ksc.encoding.train.fit`'s ``parts``)."""
    holes: list[list[int]] = field(default_factory=list)
    """The input's boundary loops as the file stores them (:func:`ksc.mesh.holes.encode_holes`); none for a closed mesh."""
    sheet: float | None = None
    """For a mesh that encloses no volume, the half-thickness of the shell around it the network describes
    (``ksc.mesh.sheets``); None for a volume."""
    table: PointTable | None = None
    """The training points' per-point constants, built once for the training and every fine-tuning."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage so far (:data:`STAGES`); each :meth:`encode` adds its fine-tuning and writing."""

    def encode(self, bits: int, fine_tune: bool = True) -> EncodeResult:
        """The ``.ksc`` bytes at ``bits`` per weight, after quantization-aware fine-tuning unless ``fine_tune`` is False.

        The float network is left as it is (a copy is fine-tuned), so one
        training serves several bit widths.
        """
        model = copy.deepcopy(self.model)
        loss = self.final_loss
        steps = self.options.qat_steps if fine_tune else 0
        if steps:
            generator = torch.Generator().manual_seed(self.options.seed * 1000 + bits)
            with timed(self.timings, "fine-tuning"):
                loss = quantization_aware_finetune(
                    model,
                    self.samples,
                    bits,
                    steps,
                    self.options.train,
                    generator,
                    self.device,
                    self.step_scales,
                    self.threads,
                    self.table,
                )
        with timed(self.timings, "writing"):
            data = self._file_bytes(model, bits, steps, loss)
        return EncodeResult(
            data=data,
            spheres=model.config.spheres,
            stored_parameters=model.stored_parameter_count(),
            final_loss=loss,
            seconds=time.monotonic() - self.started,
            weight_bits=bits,
            timings=dict(self.timings),
        )

    def _file_bytes(self, model: KeySphereNet, bits: int, qat_steps: int, loss: float) -> bytes:
        """The container of ``model``'s tensors at ``bits`` per weight, with the header that records the encode."""
        records = [
            TensorRecord(
                "spheres", tuple(model.spheres.shape), self.sphere_codec, self.sphere_codec.encode(model.spheres.cpu().numpy())
            )
        ]
        for name, tensor in model.stored_tensors().items():
            if name != "spheres":
                records.append(_quantized_record(name, tensor.detach().cpu().numpy(), bits, self.step_scales[name]))
        meta = {
            "transform": {"center": [float(v) for v in self.transform.center], "scale": float(self.transform.scale)},
            "bound": DOMAIN_BOUND,
            "model": model.config.to_dict(),
            "source": self.source,
            **({"holes": self.holes} if self.holes else {}),
            **({"sheet": self.sheet} if self.sheet is not None else {}),
            "encoder": {
                "ksc": __version__,
                "seed": self.options.seed,
                "steps": self.options.train.steps,
                "qat_steps": qat_steps,
                "distance": self.options.distance,
                "final_loss": round(loss, 6) if math.isfinite(loss) else None,
            },
        }
        if not self.options.allocate_steps:
            meta["encoder"]["allocate_steps"] = False
        if self.options.train.optimizer != TrainConfig.optimizer:
            meta["encoder"]["optimizer"] = self.options.train.optimizer
        if self.options.near_sigma != NEAR_SIGMA:
            meta["encoder"]["near_sigma"] = self.options.near_sigma
        return write_container(Container(meta=meta, tensors=records))


def train_mesh(
    mesh: trimesh.Trimesh,
    options: EncodeOptions | None = None,
    device: torch.device | None = None,
    on_step: Callable[[int, float], None] | None = None,
    threads: int = 1,
) -> TrainedMesh:
    """Normalize, sample, pick key spheres and fit the float network to ``mesh``.

    A mesh that encloses no volume (:meth:`ksc.encoding.sampling.SignedDistance.encloses_volume`, or no candidate node of the key
    spheres inside it) is fitted as a sheet: the network describes the shell of
    half-thickness :data:`ksc.mesh.sheets.THICKNESS` around it.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Input mesh, as returned by :func:`ksc.mesh.io.load_mesh`.
    options : EncodeOptions, optional
        Network shape, training, quantization and seed (default: ``EncodeOptions()``).
    device : torch.device, optional
        Where to train (default: the CPU, the reproducible reference path).
    on_step : callable, optional
        Progress callback ``on_step(step, loss)``.
    threads : int
        CPU cores the training uses: every batch is cut into this many slices, each computed in its own
        process (:class:`ksc.encoding.backprop.FusedTrainer`). The bytes depend on it (not on how many of those
        processes could start); ignored on a GPU.
    """
    started = time.monotonic()
    options = options or EncodeOptions()
    device = device or torch.device("cpu")
    source = {"vertices": int(len(mesh.vertices)), "faces": int(len(mesh.faces))}
    timings: dict[str, float] = {}
    with timed(timings, "repair"):
        mesh, flipped = consistently_wound(mesh)
    if flipped:
        log.warning("%d of %d faces were wound against their neighbours; flipped to agree", flipped, len(mesh.faces))
        source["reoriented_faces"] = flipped
    with timed(timings, "normalize"):
        transform = Transform.fit(mesh.vertices)
        unit = trimesh.Trimesh(vertices=transform.to_unit(mesh.vertices), faces=mesh.faces, process=False)
        signed_distance = SignedDistance(unit, options.distance)
    rng = np.random.default_rng(options.seed)

    with timed(timings, "key spheres"):
        sheet = not signed_distance.encloses_volume()
        if sheet:
            log.info("the open mesh's winding number is nowhere clearly inside it: encoding it as a sheet")
        else:
            try:
                spheres, sphere_codec = quantized_key_spheres(signed_distance, options.model.spheres)
            except NoVolumeError as reason:
                log.info("%s: encoding it as a sheet", reason)
                sheet = True
        if sheet:  # the shell around the sheet; its rim keeps the sheet's boundary, so no hole is cut
            exact = signed_distance if signed_distance.backend == "exact" else SignedDistance(unit)
            signed_distance = ShellDistance(exact, THICKNESS)
            spheres, sphere_codec = quantized_key_spheres(signed_distance, options.model.spheres)
    thickness = THICKNESS if sheet else None
    with timed(timings, "normalize"):
        holes = [] if sheet else encode_holes(unit.vertices, unit.faces, DOMAIN_BOUND)
    if len(spheres) < options.model.spheres:
        log.warning("only %d key spheres fit inside the shape (asked for %d)", len(spheres), options.model.spheres)
    config = ModelConfig(**{**options.model.to_dict(), "spheres": len(spheres)})
    queried = dict(signed_distance.seconds)
    with timed(timings, "sampling"):
        samples = sample_sdf(
            unit,
            signed_distance,
            options.samples,
            DOMAIN_BOUND,
            rng,
            options.sample_uniform_share(),
            options.near_sigma,
            shell=thickness,
        )
    for stage in ("distances", "signs"):  # the sampling's queries, told apart from the rest of it
        timings[stage] = signed_distance.seconds[stage] - queried[stage]
        timings["sampling"] -= timings[stage]
    log.info("sampled %d points, %d key spheres", options.samples, len(spheres))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options.seed)
        model = KeySphereNet(config, torch.from_numpy(spheres)).to(device)
    generator = torch.Generator().manual_seed(options.seed)
    with timed(timings, "training"):
        table = PointTable(model, torch.from_numpy(np.ascontiguousarray(samples.points)).to(device))
        loss = fit(model, samples, options.train, generator, device, on_step, threads, table)
    log.info("trained: final L1 loss %.5f", loss)
    for name, parameter in model.named_parameters():
        _refuse_diverged(name, parameter.detach().cpu().numpy(), f" (final L1 loss {loss:.4g})")
    if not describes_a_surface(model, samples):
        raise KscInputError(
            f"training collapsed: the network has the same sign everywhere (final L1 loss {loss:.4f}), so its file"
            " would decode to nothing; try another --seed"
        )
    with timed(timings, "step allocation"):
        if options.allocate_steps:
            scales = allocate_steps(model, samples, options.weight_bits, options.train, options.seed)
        else:
            scales = {name: 1.0 for name, _ in model.named_parameters()}
        scales = {name: STEP_FACTOR * scale for name, scale in scales.items()}
    return TrainedMesh(
        model=model,
        samples=samples,
        transform=transform,
        sphere_codec=sphere_codec,
        options=options,
        device=device,
        source=source,
        final_loss=loss,
        started=started,
        step_scales=scales,
        unit_mesh=unit,
        threads=threads,
        table=table,
        timings=timings,
        holes=holes,
        sheet=thickness,
    )


SURFACE_CHECK_POINTS = 65536


@torch.no_grad()
def describes_a_surface(model: KeySphereNet, samples: SdfSamples) -> bool:
    """Whether ``model`` takes both signs on the first :data:`SURFACE_CHECK_POINTS` training points.

    A network that collapsed to one sign (the triangle soup's, trained on a
    clipped distance, became a constant) describes no surface. The first
    samples are the near-surface kind (:func:`ksc.encoding.sampling.sample_sdf` draws
    them first), which straddle the surface, so any fitted network takes both
    signs there.
    """
    points = torch.from_numpy(np.ascontiguousarray(samples.points[:SURFACE_CHECK_POINTS]))
    model.eval()
    values = model(points.to(next(model.parameters()).device))
    return bool((values > 0).any()) and bool((values < 0).any())


def encode(
    mesh: trimesh.Trimesh,
    options: EncodeOptions,
    *,
    max_bytes: int | None = None,
    fit_width: bool = True,
    device: str = "auto",
    threads: int | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> EncodeResult:
    """The encode that ``ksc.encode``, ``ksc encode`` and ``ksc batch`` run: :func:`encode_mesh` on ``threads``
    training cores (:func:`ksc.encoding.threads.training_threads`) with torch itself on one thread meanwhile,
    the network first narrowed to ``max_bytes`` (:func:`ksc.encoding.budget.fit_width_to_budget`) unless
    ``fit_width`` is false (the caller chose its width)."""
    threads = training_threads(threads)
    if max_bytes is not None and fit_width:
        options = fit_width_to_budget(options, max_bytes)
    with torch_threads(1):
        return encode_mesh(mesh, options, resolve_device(device), on_step, max_bytes=max_bytes, threads=threads)


def encode_mesh(
    mesh: trimesh.Trimesh,
    options: EncodeOptions | None = None,
    device: torch.device | None = None,
    on_step: Callable[[int, float], None] | None = None,
    max_bytes: int | None = None,
    threads: int = 1,
) -> EncodeResult:
    """Encode ``mesh`` (original coordinates) into ``.ksc`` bytes.

    Parameters are those of :func:`train_mesh`, plus ``max_bytes``: the file
    may not be larger. The network is trained once; the largest weight bit
    width (``options.weight_bits`` or more, up to 12) whose file fits is kept.
    Raises KscInputError when even 4 bits do not fit, and when the file does
    not describe the input (:func:`ksc.encoding.check.check_file`: its coarse decode is
    far from the input's surface or inside).
    """
    options = options or EncodeOptions()
    if max_bytes is not None and max_bytes < 1:
        raise KscInputError(f"--max-bytes must be positive, got {max_bytes}")
    trained = train_mesh(mesh, options, device, on_step, threads)
    result = trained.encode(options.weight_bits) if max_bytes is None else fit_bytes(trained, max_bytes)
    with timed(result.timings, "self-check"):
        result = replace(result, data=keep_cutting_holes(result.data, trained.unit_mesh))
        check = check_file(result.data, trained.unit_mesh)
    log.info("self-check of the file: %s", check.describe())
    log.info("seconds per stage: %s", ", ".join(f"{stage} {result.timings.get(stage, 0.0):.1f}" for stage in STAGES))
    if not check.passed:
        raise KscInputError(
            f"the encoded file does not describe the input ({check.describe()}); the mesh may not enclose a"
            " clear inside (open, self-overlapping or flipped faces), the budget is too small for it, or the training"
            " failed: try another --seed or more bytes"
        )
    return result


def sphere_codec_for_grid(grid_size: int) -> SortedUniformCodec:
    """The spheres' codec: centres as node indices of the candidate grid (exact), radii in [0, 1] at :data:`RADIUS_BITS`."""
    first, spacing = grid_lattice(grid_size)
    bits = max(RADIUS_BITS, (grid_size - 1).bit_length())
    return SortedUniformCodec(bits, [first] * 3 + [0.0], [spacing] * 3 + [1.0 / (2**RADIUS_BITS - 1)])


def quantized_key_spheres(signed_distance: SignedDistance | ShellDistance, count: int) -> tuple[np.ndarray, SortedUniformCodec]:
    """Key spheres already rounded to what the file stores, and in its order, so training sees the decoder's input."""
    key_spheres = extract_key_spheres(signed_distance, count)
    codec = sphere_codec_for_grid(key_spheres.grid_size)
    spheres = key_spheres.spheres.copy()
    spheres[:, 3] = np.clip(spheres[:, 3], 0.0, 1.0)  # the largest ball inside [-1, 1]^3 has radius 1
    return codec.decode(codec.encode(spheres), spheres.shape), codec


def _refuse_diverged(name: str, values: np.ndarray, context: str = "") -> None:
    """Raise the one-line error of a diverged training when tensor ``values`` holds a non-finite or huge value."""
    if not np.all(np.isfinite(values)) or np.abs(values).max() > DIVERGED_MAGNITUDE:
        raise KscInputError(
            f"training diverged: tensor {name!r} has non-finite or huge values{context}; try a lower --lr or another --seed"
        )


def _quantized_record(name: str, values: np.ndarray, bits: int, step_scale: float = 1.0) -> TensorRecord:
    """One step per tensor (the RMS step at ``bits`` times ``step_scale``), range-coded integers
    (the codec :class:`ksc.encoding.quantize.FakeQuantizer` mirrors)."""
    _refuse_diverged(name, values)
    codec = ArithmeticUniformCodec(bits)
    return TensorRecord(name, values.shape, codec, codec.encode(values, step_scale))
