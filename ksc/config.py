"""Settings of an encoding, light enough to import without torch (the CLI's defaults come from here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ksc.errors import KscInputError

FEATURE_BRANCHES = ("direct", "latent")
ACTIVATION_NAMES = ("silu", "relu")
WEIGHTINGS = ("paper", "inverse", "inverse_square")
DISTANCES = ("exact", "pysdf")  # backends of ksc.sampling.SignedDistance, named here so that the CLI need not import pysdf
DEFAULT_RESOLUTION = 192
"""Marching-cubes grid of a decode: half the network evaluations of 256^3; decimated to twice the source's faces,
its medians are 1.01-1.03x the Chamfer-L1 and 1.03-1.04x the normal error of the 256^3 marching-cubes mesh on
the two mesh folders (benchmarks/results/decimation.md)."""
LONG_TRAINING_STEPS = 2000
LONG_TRAINING_UNIFORM_SHARE, SHORT_TRAINING_UNIFORM_SHARE = 0.10, 0.25
NEAR_SIGMA = 0.005
"""Spread of the nearest training points around the surface (``ksc.sampling.SAMPLE_MIX``'s ``near`` kind).

Both ways from it fit worse (benchmarks/results/archive/ablation-near-sigma.md)."""
MIN_RESOLUTION, MAX_RESOLUTION = 16, 1024  # memory is bounded by slabs (ksc.extract); time grows with the surface


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network; everything the decoder needs to rebuild it."""

    features: str = "direct"
    spheres: int = 64
    """Key spheres. 64 rather than the paper's 128: a training step costs 0.85x, and the time goes to more steps,
    which the fit needs more (benchmarks/results/archive/ablation-spheres-64.md)."""
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
    """The fit is training-bound (4x the steps: 0.89x the error); 28 800 fill the ~2-minute encode on 2 cores."""
    batch_size: int = 2048
    learning_rate: float = 2e-2
    time_budget: float | None = None

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
    (:mod:`ksc.step_allocation`); False keeps every tensor's RMS step.
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
"""Preset name -> network width and bits. The width sets the rate, not the bits: below 8 bits a weight loses
more accuracy than the extra parameters buy back, above 8 it gains little (docs/method.md, "Store")."""


def preset_options(name: str, **changes) -> EncodeOptions:
    """The options of preset ``name`` ('small', 'default', 'high'), with ``changes`` (EncodeOptions fields) applied.

    A ``model`` among ``changes`` replaces the preset's, width included.
    """
    if name not in PRESETS:
        raise KscInputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    return replace(EncodeOptions(model=ModelConfig(width=preset.width), weight_bits=preset.weight_bits), **changes)
