"""Settings of an encoding, light enough to import without torch (the CLI's defaults come from here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ksc.errors import KscInputError

FEATURE_BRANCHES = ("direct", "latent")
ACTIVATION_NAMES = ("silu", "relu")
WEIGHTINGS = ("paper", "inverse", "inverse_square")
DISTANCES = ("exact", "pysdf")  # backends of ksc.sampling.SignedDistance, named here so that the CLI need not import pysdf
DEFAULT_RESOLUTION = 256
LONG_TRAINING_STEPS = 2000
LONG_TRAINING_UNIFORM_SHARE, SHORT_TRAINING_UNIFORM_SHARE = 0.10, 0.25
NEAR_SIGMA = 0.005
"""Spread of the nearest training points around the surface (``ksc.sampling.SAMPLE_MIX``'s ``near`` kind).

Both ways from it fit worse: 0.0025 gave 1.16x (dragon) and 1.24x (Lucy) the
Chamfer-L1, 0.01 gave 1.04x and 1.06x (benchmarks/results/ablation-near-sigma.md)."""
MIN_RESOLUTION, MAX_RESOLUTION = 16, 1024  # memory is bounded by slabs (ksc.extract); time grows with the surface


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network; everything the decoder needs to rebuild it."""

    features: str = "direct"
    spheres: int = 64
    """Key spheres: 64 since ksc 0.12 (the paper and ksc before: 128).

    The sphere branch costs every training step a (batch x spheres) distance
    matrix and its product with the sphere features: with 64 spheres a default
    step takes 0.85x the time of one with 128 (benchmarks/results/train-step-1thread.md),
    so 28 800 steps (``TrainConfig.steps``, 1.2x) train in about the time 24 000 took, and the
    spheres cost ~170 fewer bytes. The fit is training-bound (4x the steps gave
    0.89x the Chamfer-L1), so the steps outweigh the spheres: on five meshes
    0.92-1.02x the Chamfer-L1 (median 0.98) in 0.97-0.99x the bytes, in about
    the same encode time (benchmarks/results/ablation-spheres-64.md). Spending
    the freed bytes on one more hidden unit instead (width 35, 27 600 steps)
    gave 0.88-1.03x (median 0.95) in 1.00-1.03x the bytes: about the same
    trade of bytes against error, at more bytes and time."""
    layers: int = 5
    width: int = 34
    activation: str = "silu"
    weighting: str = "paper"
    frequencies: int = 6
    feature_dim: int = 8

    def __post_init__(self):
        if self.features not in FEATURE_BRANCHES:
            raise KscInputError(f"features must be one of {FEATURE_BRANCHES}, got {self.features!r}")
        if self.activation not in ACTIVATION_NAMES:
            raise KscInputError(f"activation must be one of {ACTIVATION_NAMES}, got {self.activation!r}")
        if self.weighting not in WEIGHTINGS:
            raise KscInputError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        for name, low, high in (
            ("spheres", 1, 4096),
            ("layers", 1, 32),
            ("width", 1, 1024),
            ("frequencies", 0, 16),
            ("feature_dim", 1, 256),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or not low <= value <= high:
                raise KscInputError(f"{name} must be an integer in [{low}, {high}], got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return cls(**data)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (stored in the container for the record)."""

    steps: int = 28800
    """28 800 since ksc 0.12 (24 000 before): what 64 spheres instead of 128 buy in the same time (``ModelConfig.spheres``)."""
    batch_size: int = 2048
    learning_rate: float = 2e-2
    time_budget: float | None = None
    loss_clamp: float | None = None
    """Beyond this true distance, the loss asks only for a value between it and the truth (``ksc.train.sdf_loss``)."""
    far_floor: float = 0.0
    """With ``loss_clamp``, far values may not fall below this share of the true distance."""
    average_tail: float = 0.0
    """Share of the last steps whose parameters are averaged into the trained network (0: keep the last)."""
    truncation: float | None = None
    """Train on the signed distance clipped to [-truncation, truncation] (None: the whole distance).

    The network then spends nothing on the far field's exact values; a clipped
    distance is still a lower bound of the true one, which is all the decoder's
    block search assumes. Off by default: at 0.1 it gave 0.83-1.03x the
    Chamfer-L1 on four meshes in 3-8 % fewer bytes (benchmarks/results/ablation-truncation.md),
    but on all 15 the errors moved both ways (0.83-1.28x at the default preset,
    rd-truncation.md) and the triangle soup's width-36 network collapsed to a
    constant with no surface (its loss spiked once the warm-up reached the peak
    learning rate, then stayed at the constant's): with every target within 0.1
    of zero, a constant near the median target is a stable minimum of the L1
    loss, which the whole distance's far targets make a costly one."""
    error_focus: float = 0.0
    """Share of each batch drawn in proportion to the samples' current error (``ksc.train.BatchSampler``; 0: uniform)."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EncodeOptions:
    """Everything that shapes an encoding; same options + seed -> same bytes.

    ``qat_steps`` steps of quantization-aware fine-tuning follow the float
    training, at ``weight_bits`` (see :mod:`ksc.quantize`); 0 skips them.
    ``uniform_share`` is the share of training points drawn uniformly in the
    box (the rest lie near the surface); None picks it from the step count,
    see :meth:`sample_uniform_share`. ``near_sigma`` is the standard deviation
    of the Gaussian offset of the nearest kind of surface points
    (:data:`ksc.sampling.SAMPLE_MIX`). ``distance`` names where the training
    distances come from (:class:`ksc.sampling.SignedDistance`): ``exact`` or
    the faster, approximate ``pysdf``. ``allocate_steps`` gives each stored
    tensor its own quantization step from its measured sensitivity
    (:mod:`ksc.step_allocation`, since ksc 0.13); False keeps every tensor's RMS step.
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
        if self.train.loss_clamp is not None and not self.train.loss_clamp > 0:
            raise KscInputError(f"loss clamp must be positive, got {self.train.loss_clamp}")
        if not 0.0 <= self.train.average_tail < 1.0:
            raise KscInputError(f"averaged share of the steps must be in [0, 1), got {self.train.average_tail}")
        if self.train.truncation is not None and not 0.0 < self.train.truncation <= 10.0:
            raise KscInputError(f"distance truncation must be in (0, 10], got {self.train.truncation}")
        if not 0.0 <= self.train.error_focus <= 1.0:
            raise KscInputError(f"error-focused share of a batch must be in [0, 1], got {self.train.error_focus}")
        if not 0.0 <= self.train.far_floor <= 1.0:
            raise KscInputError(f"far floor must be in [0, 1], got {self.train.far_floor}")

    def sample_uniform_share(self) -> float:
        """The uniform share used: ``uniform_share``, or by default 10 % for trainings of
        at least :data:`LONG_TRAINING_STEPS` steps and 25 % for shorter ones.

        Fewer far points let a long training spend itself near the surface
        (10 % instead of 25 %: median Chamfer-L1 0.00321 -> 0.00260 over the 15
        meshes, benchmarks/results/rd-uniform10.md); a short one then leaves
        ghost surfaces in the far field (a 1000-step torus fell to IoU 0.5-0.7,
        while 2000 and 4000 steps held 0.99).
        """
        if self.uniform_share is not None:
            return self.uniform_share
        return LONG_TRAINING_UNIFORM_SHARE if self.train.steps >= LONG_TRAINING_STEPS else SHORT_TRAINING_UNIFORM_SHARE


@dataclass(frozen=True)
class Preset:
    """A named rate point: bits per stored weight and the hidden width (the rest is the default network and training)."""

    weight_bits: int
    width: int
    typical_size: str
    """Median file size over the 15 meshes of ../shared/meshes (benchmarks/results/rd.md)."""


PRESETS = {
    "small": Preset(weight_bits=8, width=28, typical_size="~5.1 KB"),
    "default": Preset(weight_bits=EncodeOptions.weight_bits, width=ModelConfig.width, typical_size="~6.8 KB"),
    "high": Preset(weight_bits=8, width=39, typical_size="~8.3 KB"),
}
"""Preset name -> network width and bits. The width sets the rate, not the bits: below 8
bits a weight loses more accuracy than the extra parameters buy back, above 8 it gains
little (README, "Presets"; benchmarks/results/rd.md against ksc 0.5's 6-, 8- and 10-bit
6 x 32 presets: small has 0.83x their small preset's Chamfer-L1 at 0.97x the bytes, high
0.96x at 0.98x, medians over the 15 meshes). Since ksc 0.8 the network also takes 6 octaves
of Fourier features of the point, which widen its first layer, so widths 23, 29 and 33
stored about what 0.7's 26, 32 and 36 did; since ksc 0.9 the spheres give 8 features
instead of 29, and widths 25, 31 and 35 store about what 0.8's 23, 29 and 33 did; since ksc 0.10
the network has 5 hidden layers instead of 6, and widths 28, 34 and 39 store about what 0.9's
25, 31 and 35 did."""


def preset_options(name: str, **changes) -> EncodeOptions:
    """The options of preset ``name`` ('small', 'default', 'high'), with ``changes`` (EncodeOptions fields) applied.

    A ``model`` among ``changes`` replaces the preset's, width included.
    """
    if name not in PRESETS:
        raise KscInputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    return replace(EncodeOptions(model=ModelConfig(width=preset.width), weight_bits=preset.weight_bits), **changes)
