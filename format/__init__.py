"""The ``.ksc`` container, installed as ``ksc.format`` (spec: ``format/SPEC.md``)."""

from .codecs import ArithmeticUniformCodec, RowUniformCodec, SortedUniformCodec, UniformCodec, codec_from_config
from .container import VERSION, Container, TensorRecord, read_container, read_file, write_container

__all__ = [
    "VERSION",
    "ArithmeticUniformCodec",
    "Container",
    "RowUniformCodec",
    "SortedUniformCodec",
    "TensorRecord",
    "UniformCodec",
    "codec_from_config",
    "read_container",
    "read_file",
    "write_container",
]
