"""Helpers to build malformed ``.ksc`` files on purpose (for tests and the hostile-file benchmark).

They bypass the writer's checks: :func:`pack_raw` seals whatever header and
tensor bytes it is given with a valid preamble, zstandard frame and CRC, so
that a mutation reaches the reader's checks behind the checksum.
"""

from __future__ import annotations

import struct
import zlib

import msgpack
import zstandard

from .container import HEADER_SIZE, MAGIC, PREAMBLE, TRAILER, VERSION


def reseal(framed: bytes) -> bytes:
    """``framed`` (everything before the trailer) followed by its correct CRC-32."""
    return framed + TRAILER.pack(zlib.crc32(framed))


def unpack_raw(data: bytes) -> tuple[tuple[int, int], dict, bytes]:
    """``(version, header, tensor bytes)`` of a well-formed file, without validation."""
    _, major, minor = PREAMBLE.unpack_from(data)
    body = zstandard.ZstdDecompressor().decompress(data[PREAMBLE.size : -TRAILER.size])
    (size,) = HEADER_SIZE.unpack_from(body)
    header = msgpack.unpackb(body[HEADER_SIZE.size : HEADER_SIZE.size + size], strict_map_key=False)
    return (major, minor), header, body[HEADER_SIZE.size + size :]


def pack_raw(header, tensors: bytes, version: tuple[int, int] = VERSION, header_size: int | None = None) -> bytes:
    """A sealed file around any msgpack-able ``header`` and ``tensors``; ``header_size`` may lie."""
    header_bytes = msgpack.packb(header, use_bin_type=True)
    declared = len(header_bytes) if header_size is None else header_size
    body = struct.pack("<I", declared) + header_bytes + tensors
    compressed = zstandard.ZstdCompressor(level=3, write_content_size=True).compress(body)
    return reseal(PREAMBLE.pack(MAGIC, *version) + compressed)


def header_paths(node, prefix: tuple = ()):
    """Every key path (a tuple of map keys and list indices) inside a header, the root left out."""
    if prefix:
        yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield from header_paths(value, (*prefix, key))
