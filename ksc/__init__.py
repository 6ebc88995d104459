"""ksc: a neural codec for triangle meshes built on key spheres."""

__version__ = "0.13.0"
