"""Experiments that chose a default of the product (an optimizer, a distance backend, a decimation policy, ...).

Each is run from the repository root as ``python -m research.design.<name>`` and writes its tables into
``research/design/results/``; the product's own benchmarks stay in ``benchmarks/``, whose helpers these share.
"""

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
