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
    SortedUniformCodec,
    TensorRecord,
    UniformCodec,
    read_container,
    write_container,
)
from ksc.format.container import MAGIC, MAX_BODY_BYTES
from ksc.format.layout import tensor_layout
from ksc.format.testing import pack_raw, unpack_raw
from ksc.models.config import ModelConfig

TINY_MODEL = {
    "features": "direct",
    "spheres": 3,
    "layers": 1,
    "width": 6,
    "activation": "silu",
    "weighting": "paper",
    "frequencies": 0,
    "feature_dim": 2,
}


def sample_container() -> Container:
    """A tiny network's tensors, in its layout's order, through every kind of codec."""
    rng = np.random.default_rng(0)
    row, coded = RowUniformCodec(8), ArithmeticUniformCodec(8)
    spheres = rng.uniform(0.0, 0.5, size=(3, 4))
    sphere_codec = SortedUniformCodec.over_range(8, [0.0] * 4, [0.5] * 4)
    tensors = [TensorRecord("spheres", (3, 4), sphere_codec, sphere_codec.encode(spheres))]
    for name, shape in tensor_layout(ModelConfig(**TINY_MODEL))[1:]:
        values = rng.normal(size=shape)
        codec = row if len(shape) == 2 and shape[0] > 1 else UniformCodec.fit(values, 8) if name.endswith("bias") else coded
        tensors.append(TensorRecord(name, shape, codec, codec.encode(values)))
    return Container(
        meta={
            "model": dict(TINY_MODEL),
            "transform": {"center": [0.0, 1.0, 2.0], "scale": 3.0},
            "bound": 1.05,
            "source": {"vertices": 8},
        },
        tensors=tensors,
    )


def reseal(body: bytes) -> bytes:
    """A file whose checksum is right for ``body`` (to reach the checks behind the CRC)."""
    return body + struct.pack("<I", zlib.crc32(body))


def test_round_trip_is_bit_exact():
    data = write_container(sample_container())
    parsed = read_container(data)
    assert write_container(parsed) == data
    assert parsed.meta == sample_container().meta
    assert [(t.name, t.shape) for t in parsed.tensors] == tensor_layout(ModelConfig(**TINY_MODEL))
    assert parsed.sizes["file"] == len(data)
    original = sample_container().tensor_map()
    for name, values in parsed.tensor_map().items():
        assert np.array_equal(values, original[name])


def test_starts_with_magic_and_version():
    data = write_container(sample_container())
    assert data[:4] == MAGIC and data[4:6] == bytes(VERSION)


def test_future_major_version_is_rejected_with_the_versions_read():
    data = bytearray(write_container(sample_container()))
    data[4] = 6
    with pytest.raises(KscFormatError, match=r"version 6\.0 is not supported; this ksc reads 1\.x, 2\.x, 3\.x, 4\.x, 5\.x"):
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


def test_header_stores_no_tensor_names_or_shapes():
    # 5.x: [transform, bound, model, codecs, tensors, info]; names and shapes follow from the model
    _, header, _ = unpack_raw(write_container(sample_container()))
    transform, bound, model, codecs, tensors, info = header
    assert transform == [0.0, 1.0, 2.0, 3.0] and bound == 1.05
    assert model == list(TINY_MODEL.values())
    assert all(len(entry) == 2 for entry in tensors) and len(tensors) == len(sample_container().tensors)
    assert info == {"source": {"vertices": 8}}


def test_writer_refuses_tensors_that_are_not_the_models():
    container = sample_container()
    container.tensors[1], container.tensors[2] = container.tensors[2], container.tensors[1]
    with pytest.raises(KscFormatError, match="are not the model's"):
        write_container(container)
    container = sample_container()
    del container.meta["bound"]
    with pytest.raises(KscFormatError, match="needs"):
        write_container(container)


def test_elements_a_newer_minor_appends_are_ignored():
    version, header, tensors = unpack_raw(write_container(sample_container()))
    assert version == (5, 0)  # no holes: the file is the 5.0 it always was
    assert read_container(pack_raw([*header, {"later": 1}], tensors, (5, 0))).meta == sample_container().meta
    holes = [[0, 0, 0, 255, 0, 0, 0, 255, 0]]
    later = read_container(pack_raw([*header, holes, 0.02, {"later": 1}], tensors, (5, 2)))
    assert later.meta == {**sample_container().meta, "holes": holes, "sheet": 0.02}


def test_a_sheet_round_trips_as_5_1_and_bad_sheets_are_refused():
    container = sample_container()
    data = write_container(Container(meta={**container.meta, "sheet": 0.02}, tensors=container.tensors))
    read = read_container(data)
    assert read.version == (5, 1) and read.meta["sheet"] == 0.02 and "holes" not in read.meta
    version, header, tensors = unpack_raw(data)
    assert header[6] == []  # a sheet without holes: position 6 is there, empty
    for bad in (0.0, 0.5, 1, "thin", None, float("nan")):
        with pytest.raises(KscFormatError, match="'sheet' must be a float in"):
            read_container(pack_raw([*header[:7], bad], tensors, version))


def test_holes_round_trip_as_5_1_and_bad_holes_are_refused():
    container = sample_container()
    holes = [[10, 20, 30, 40, 50, 60, 70, 80, 90], [1, 2, 3] * 4]
    data = write_container(Container(meta={**container.meta, "holes": holes}, tensors=container.tensors))
    read = read_container(data)
    assert read.version == (5, 1) and read.meta["holes"] == holes
    version, header, tensors = unpack_raw(data)
    for bad, message in (
        ([[0, 0, 0, 1, 1, 1, 2, 2, 2]] * 257, "array of 0 to 256 loops"),
        ([[1, 2, 3, 4, 5, 6]], "3 to 255 points"),
        ([[1, 2, 3, 4, 5, 6, 7, 8]], "3 to 255 points"),
        ([[0, 0, 0, 0, 0, 0, 0, 0, 256]], "integers 0..255"),
        ([[0, 0, 0, 0, 0, 0, 0, 0, -1]], "integers 0..255"),
        ([[0.5] * 9], "integers 0..255"),
        ("holes", "array of 0 to 256 loops"),
    ):
        with pytest.raises(KscFormatError, match=message):
            read_container(pack_raw([*header[:6], bad], tensors, version))


@pytest.mark.parametrize(
    ("position", "value", "message"),
    [
        (0, [0.0, 1.0], "transform"),
        (2, [*TINY_MODEL.values()][:-1], "'model' must be an array"),
        (2, ["direct", 3, 10**6, 6, "silu", "paper", 0, 2], "layers must be an integer"),
        (3, [], "'codecs' must list"),
        (4, [[0, 10]], "must list 7 entries"),
        (5, {"model": 1}, "'info' must be a map"),
    ],
)
def test_bad_5x_header_fields_name_the_field(position, value, message):
    version, header, tensors = unpack_raw(write_container(sample_container()))
    header[position] = value
    with pytest.raises(KscFormatError, match=message):
        read_container(pack_raw(header, tensors, version))
