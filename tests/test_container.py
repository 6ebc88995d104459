import struct
import zlib

import numpy as np
import pytest

from ksc.errors import KscFormatError
from ksc.format import (
    VERSION,
    ArithmeticUniformCodec,
    Container,
    RowUniformCodec,
    TensorRecord,
    UniformCodec,
    read_container,
    write_container,
)
from ksc.format.container import MAGIC, MAX_BODY_BYTES


def sample_container() -> Container:
    rng = np.random.default_rng(0)
    weight, bias, other = rng.normal(size=(6, 4)), rng.normal(size=6), rng.normal(size=(3, 3))
    row, flat, coded = RowUniformCodec(8), UniformCodec.fit(bias, 8), ArithmeticUniformCodec(8)
    return Container(
        meta={"model": {"width": 6}, "transform": {"center": [0.0, 1.0, 2.0], "scale": 3.0}},
        tensors=[
            TensorRecord("w", (6, 4), row, row.encode(weight)),
            TensorRecord("b", (6,), flat, flat.encode(bias)),
            TensorRecord("v", (3, 3), coded, coded.encode(other)),
            TensorRecord("u", (6,), coded, coded.encode(bias)),
        ],
    )


def reseal(body: bytes) -> bytes:
    """A file whose checksum is right for ``body`` (to reach the checks behind the CRC)."""
    return body + struct.pack("<I", zlib.crc32(body))


def test_round_trip_is_bit_exact():
    data = write_container(sample_container())
    parsed = read_container(data)
    assert write_container(parsed) == data
    assert parsed.meta == sample_container().meta
    assert [t.name for t in parsed.tensors] == ["w", "b", "v", "u"]
    assert parsed.sizes["file"] == len(data)
    original = sample_container().tensor_map()
    for name, values in parsed.tensor_map().items():
        assert np.array_equal(values, original[name])


def test_starts_with_magic_and_version():
    data = write_container(sample_container())
    assert data[:4] == MAGIC and data[4:6] == bytes(VERSION)


def test_future_major_version_is_rejected_with_the_versions_read():
    data = bytearray(write_container(sample_container()))
    data[4] = 5
    with pytest.raises(KscFormatError, match=r"version 5\.0 is not supported; this ksc reads 1\.x, 2\.x, 3\.x, 4\.x"):
        read_container(reseal(bytes(data[:-4])))


def test_newer_minor_version_is_read():
    data = bytearray(write_container(sample_container()))
    data[5] = 7
    assert read_container(reseal(bytes(data[:-4]))).version == (VERSION[0], 7)


@pytest.mark.parametrize("cut", [0, 3, 6, 10, -5, -1])
def test_truncation_is_detected(cut):
    data = write_container(sample_container())
    with pytest.raises(KscFormatError):
        read_container(data[:cut])


def test_every_single_bit_flip_is_detected():
    data = write_container(sample_container())
    for position in range(len(data) * 8):
        corrupted = bytearray(data)
        corrupted[position // 8] ^= 1 << (position % 8)
        with pytest.raises(KscFormatError):
            read_container(bytes(corrupted))


def test_bad_magic():
    with pytest.raises(KscFormatError, match="magic"):
        read_container(b"PK\x03\x04" + bytes(40))


def test_absurd_declared_body_size_is_rejected_before_allocation():
    import zstandard

    frame = bytearray(zstandard.ZstdCompressor(write_content_size=True).compress(b"x" * 10))
    params = zstandard.get_frame_parameters(bytes(frame))
    assert params.content_size == 10
    # Hand-craft a frame header claiming 2**40 bytes: single-segment flag, 8-byte content size.
    header = bytes([0x28, 0xB5, 0x2F, 0xFD, 0xE0]) + struct.pack("<Q", 2**40)
    body = MAGIC + bytes([1, 0]) + header + bytes(8)
    with pytest.raises(KscFormatError, match=f"limit is {MAX_BODY_BYTES}"):
        read_container(reseal(body))
