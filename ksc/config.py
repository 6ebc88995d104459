"""Settings of an encoding, light enough to import without torch (the CLI's defaults come from here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ksc.errors import KscInputError

FEATURE_BRANCHES = ("direct", "latent")
ACTIVATION_NAMES = ("silu", "relu")
DEFAULT_RESOLUTION = 256
MIN_RESOLUTION, MAX_RESOLUTION = 16, 512  # 512^3 float32 values are 0.5 GB before marching cubes


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network; everything the decoder needs to rebuild it."""

    features: str = "direct"
    spheres: int = 128
    layers: int = 6
    width: int = 32
    activation: str = "silu"

    def __post_init__(self):
        if self.features not in FEATURE_BRANCHES:
            raise KscInputError(f"features must be one of {FEATURE_BRANCHES}, got {self.features!r}")
        if self.activation not in ACTIVATION_NAMES:
            raise KscInputError(f"activation must be one of {ACTIVATION_NAMES}, got {self.activation!r}")
        for name, low, high in (("spheres", 1, 4096), ("layers", 1, 32), ("width", 1, 1024)):
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

    steps: int = 12000
    batch_size: int = 4096
    learning_rate: float = 1e-2
    time_budget: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EncodeOptions:
    """Everything that shapes an encoding; same options + seed -> same bytes."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    samples: int = 1_000_000
    weight_bits: int = 8
    seed: int = 0

    def __post_init__(self):
        if not 2 <= self.weight_bits <= 16:
            raise KscInputError(f"weight bits must be in [2, 16], got {self.weight_bits}")
        if not 1000 <= self.samples <= 20_000_000:
            raise KscInputError(f"samples must be in [1000, 20000000], got {self.samples}")
        if self.train.steps < 1 or self.train.batch_size < 1:
            raise KscInputError("steps and batch size must be positive")
