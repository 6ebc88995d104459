"""Settings of an encoding, light enough to import without torch (the CLI's defaults come from here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ksc.errors import KscInputError
from ksc.models.config import ModelConfig

OPTIMIZERS = ("soap", "adam")  # ksc.encoding.soap.Soap with and without its eigenbases
DISTANCES = ("exact", "pysdf")  # backends of ksc.encoding.sampling.SignedDistance, named here: no pysdf import needed
LONG_TRAINING_STEPS = 2000
LONG_TRAINING_UNIFORM_SHARE, SHORT_TRAINING_UNIFORM_SHARE = 0.10, 0.25
NEAR_SIGMA = 0.005
"""Spread of the nearest training points around the surface (``ksc.encoding.sampling.SAMPLE_MIX``'s ``near`` kind).

Both ways from it fit worse (benchmarks/results/archive/ablation-near-sigma.md)."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (stored in the container for the record)."""

    steps: int = 10800
    """Where SOAP reaches the error of 28 800 Adam steps: between 9600 and 12 000 (research/design/results/optimizer.md,
    encode-versions-steps.md)."""
    batch_size: int = 2048
    learning_rate: float = 2e-2
    time_budget: float | None = None
    optimizer: str = "soap"
    """``soap``: Adam in the eigenbases of each weight matrix's gradient statistics; ``adam``: plain Adam, the
    reference of research/design/optimizer.py (:class:`ksc.encoding.soap.Soap`)."""

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise KscInputError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EncodeOptions:
    """Everything that shapes an encoding; same options + seed -> same bytes.

    ``qat_steps`` steps of quantization-aware fine-tuning follow the float
    training, at ``weight_bits`` (see :mod:`ksc.encoding.quantize`); 0 skips them.
    ``uniform_share`` is the share of training points drawn uniformly in the
    box (the rest lie near the surface); None picks it from the step count,
    see :meth:`sample_uniform_share`. ``near_sigma`` is the standard deviation
    of the Gaussian offset of the nearest kind of surface points
    (:data:`ksc.encoding.sampling.SAMPLE_MIX`). ``distance`` names where the training
    distances come from (:class:`ksc.encoding.sampling.SignedDistance`): ``exact`` or
    the faster, approximate ``pysdf``. ``allocate_steps`` gives each stored
    tensor its own quantization step from its measured sensitivity
    (:mod:`ksc.encoding.step_allocation`); False keeps every tensor's RMS step.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    samples: int = 1_000_000
    weight_bits: int = 8
    qat_steps: int = 1500
    uniform_share: float | None = None
    near_sigma: float = NEAR_SIGMA
    distance: str = "exact"
    allocate_steps: bool = True
    seed: int = 0

    def __post_init__(self):
        if not 2 <= self.weight_bits <= 16:
            raise KscInputError(f"weight bits must be in [2, 16], got {self.weight_bits}")
        if not 0 <= self.qat_steps <= 1_000_000:
            raise KscInputError(f"quantization-aware steps must be in [0, 1000000], got {self.qat_steps}")
        if self.uniform_share is not None and not 0.0 <= self.uniform_share <= 0.9:
            raise KscInputError(f"uniform share of the samples must be in [0, 0.9], got {self.uniform_share}")
        if not 0.0 < self.near_sigma <= 0.1:
            raise KscInputError(f"near-surface sample spread must be in (0, 0.1], got {self.near_sigma}")
        if not isinstance(self.allocate_steps, bool):
            raise KscInputError(f"allocate_steps must be True or False, got {self.allocate_steps!r}")
        if self.distance not in DISTANCES:
            raise KscInputError(f"distance must be one of {DISTANCES}, got {self.distance!r}")
        if not 1000 <= self.samples <= 20_000_000:
            raise KscInputError(f"samples must be in [1000, 20000000], got {self.samples}")
        if self.train.steps < 1 or self.train.batch_size < 1:
            raise KscInputError("steps and batch size must be positive")

    def sample_uniform_share(self) -> float:
        """The uniform share used: ``uniform_share``, or by default 10 % for trainings of
        at least :data:`LONG_TRAINING_STEPS` steps and 25 % for shorter ones.

        Fewer far points let a long training spend itself near the surface
        (10 % instead of 25 %: median Chamfer-L1 0.00321 -> 0.00260 over the 15
        meshes, benchmarks/results/archive/rd-uniform10.md); a short one then leaves
        ghost surfaces in the far field (a 1000-step torus fell to IoU 0.5-0.7,
        while 2000 and 4000 steps held 0.99).
        """
        if self.uniform_share is not None:
            return self.uniform_share
        return LONG_TRAINING_UNIFORM_SHARE if self.train.steps >= LONG_TRAINING_STEPS else SHORT_TRAINING_UNIFORM_SHARE


@dataclass(frozen=True)
class Preset:
    """A named setting: the rate (bits per stored weight, hidden width) and, for a faster encode, a shorter
    training than the default's (None: EncodeOptions' and TrainConfig's values)."""

    weight_bits: int
    width: int
    summary: str
    """What it is for, in a few words (``--help``); its measured sizes, times and errors are in the README's
    "Command line" and benchmarks/results/rd.md, rd-fast.md."""
    steps: int | None = None
    batch_size: int | None = None
    samples: int | None = None
    qat_steps: int | None = None
    allocate_steps: bool = True


PRESETS = {
    "small": Preset(weight_bits=8, width=28, summary="a smaller file, a coarser surface"),
    "default": Preset(weight_bits=EncodeOptions.weight_bits, width=ModelConfig.width, summary="the balance"),
    "high": Preset(weight_bits=8, width=39, summary="a larger file, a finer surface"),
    "fast": Preset(
        weight_bits=8,
        width=ModelConfig.width,
        summary="the default's network trained briefly: a first look, not for keeps",
        steps=2500,
        batch_size=1024,
        samples=250_000,
        qat_steps=300,
        allocate_steps=False,
    ),
}
"""Preset name -> network width and bits, and for ``fast`` its training. The width sets the rate, not the bits:
below 8 bits a weight loses more accuracy than the extra parameters buy back, above 8 it gains little
(docs/method.md, "Store"). ``fast`` is the default's network trained briefly: 2500 SOAP steps of 1024 points on
250k samples, 300 fine-tuning steps, no per-tensor step allocation (its 3 s buy more in steps). Batches of
1024 beat fewer of 2048, twice the learning rate and more of 512 (bunny, dragon, homer); its time and error
against the default are in encode-versions.md."""


def preset_options(name: str, **changes) -> EncodeOptions:
    """The options of preset ``name`` (``PRESETS``), with ``changes`` (EncodeOptions fields) applied.

    A ``model`` or ``train`` among ``changes`` replaces the preset's, width and steps included.
    """
    if name not in PRESETS:
        raise KscInputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    base = EncodeOptions()
    train = replace(
        base.train,
        steps=preset.steps if preset.steps is not None else base.train.steps,
        batch_size=preset.batch_size if preset.batch_size is not None else base.train.batch_size,
    )
    options = EncodeOptions(
        model=ModelConfig(width=preset.width),
        train=train,
        samples=preset.samples if preset.samples is not None else base.samples,
        weight_bits=preset.weight_bits,
        qat_steps=preset.qat_steps if preset.qat_steps is not None else base.qat_steps,
        allocate_steps=preset.allocate_steps,
    )
    return replace(options, **changes)
