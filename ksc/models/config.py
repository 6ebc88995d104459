"""The network's shape: everything a decoder needs to rebuild it, light enough for the container layer."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ksc.errors import KscInputError

FEATURE_BRANCHES = ("direct", "latent")
ACTIVATION_NAMES = ("silu", "relu")
WEIGHTINGS = ("paper", "inverse", "inverse_square")


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
