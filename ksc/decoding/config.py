"""A decode's grid: its default and its limits."""

DEFAULT_RESOLUTION = 192
"""Marching-cubes grid of a decode: half the network evaluations of 256^3; decimated to twice the source's faces,
its medians are 1.01-1.03x the Chamfer-L1 and 1.03-1.04x the normal error of the 256^3 marching-cubes mesh on
the two mesh folders (research/design/results/decimation.md)."""
MIN_RESOLUTION, MAX_RESOLUTION = 16, 1024  # memory is bounded by slabs (ksc.decoding.extract); time grows with the surface
