"""Meshes in and out: reading, writing, repair, normalization, sampling and the error metrics."""
