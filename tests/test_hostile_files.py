"""Property tests: whatever bytes a reader is handed, it fails only with KscFormatError, quickly and in little memory.

Mutations start from the golden file. Those that keep the checksum right
(``reseal``) reach the checks behind it: zstandard, msgpack, the header
fields, the tensor shapes, the network itself.
"""

from __future__ import annotations

import copy
import tracemalloc
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ksc.decoding.pipeline import verify
from ksc.errors import KscFormatError
from ksc.format.container import MAGIC, MAX_FILE_BYTES, PREAMBLE, READABLE_MAJORS, VERSION
from ksc.format.testing import header_paths, pack_raw, reseal, unpack_raw

GOLDEN_FOLDER = Path(__file__).resolve().parent / "golden"
GOLDEN = (GOLDEN_FOLDER / "v{}.{}".format(*VERSION) / "torus.ksc").read_bytes()
MAP_HEADER_VERSION = (4, 0)
"""The last format whose header is a map with tensor names and shapes (5.0's is an array without them)."""
MAP_HEADER_GOLDEN = (GOLDEN_FOLDER / "v{}.{}".format(*MAP_HEADER_VERSION) / "torus.ksc").read_bytes()
EVERY_GOLDEN = sorted(GOLDEN_FOLDER.glob("v*/*.ksc"))
READS = ", ".join(f"{major}.x" for major in READABLE_MAJORS)
PEAK_BYTES = 64 * 1024 * 1024
PROPERTY = settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def golden_parts(data: bytes = GOLDEN) -> tuple[dict | list, bytes]:
    """A golden file's header and tensor bytes (the current version's by default)."""
    _, header, tensors = unpack_raw(data)
    return header, tensors


def only_format_errors(data: bytes) -> None:
    """Reading and verifying ``data`` either succeeds or raises KscFormatError, within PEAK_BYTES of Python memory."""
    tracemalloc.start()
    try:
        verify(data)
    except KscFormatError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < PEAK_BYTES, f"reading used {peak} bytes"


def test_golden_file_passes_and_packing_helper_is_faithful():
    verify(GOLDEN)
    header, tensors = golden_parts()
    verify(pack_raw(header, tensors, VERSION))


@pytest.mark.parametrize("path", EVERY_GOLDEN, ids=lambda path: path.parent.name)
def test_truncation_at_every_offset_is_rejected(path):
    data = path.read_bytes()
    for cut in range(len(data)):
        with pytest.raises(KscFormatError):
            verify(data[:cut])


def test_bytes_after_the_body_are_rejected():
    for extra in (b"\x00", b"junk", GOLDEN[PREAMBLE.size : -4]):
        with pytest.raises(KscFormatError, match="unexpected bytes after the compressed body"):
            verify(reseal(GOLDEN[:-4] + extra))


def test_oversized_file_is_rejected_before_parsing():
    with pytest.raises(KscFormatError, match="at most"):
        verify(GOLDEN + bytes(MAX_FILE_BYTES))


@PROPERTY
@given(st.binary(max_size=2048))
def test_random_bytes(data):
    with pytest.raises(KscFormatError):
        verify(data)


@PROPERTY
@given(st.binary(max_size=2048))
def test_random_bytes_behind_a_valid_preamble_and_checksum(payload):
    only_format_errors(reseal(MAGIC + bytes(VERSION) + payload))


@PROPERTY
@given(st.lists(st.integers(0, len(GOLDEN) * 8 - 1), min_size=1, max_size=8, unique=True))
def test_random_bit_flips_are_detected(positions):
    corrupted = bytearray(GOLDEN)
    for position in positions:
        corrupted[position // 8] ^= 1 << (position % 8)
    with pytest.raises(KscFormatError):
        verify(bytes(corrupted))


@PROPERTY
@given(st.lists(st.integers(PREAMBLE.size * 8, (len(GOLDEN) - 4) * 8 - 1), min_size=1, max_size=8, unique=True))
def test_random_bit_flips_behind_a_resealed_checksum(positions):
    corrupted = bytearray(GOLDEN[:-4])
    for position in positions:
        corrupted[position // 8] ^= 1 << (position % 8)
    only_format_errors(reseal(bytes(corrupted)))


PACKABLE_INTS = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what msgpack can hold
ABSURD = st.one_of(
    st.none(),
    st.booleans(),
    PACKABLE_INTS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(min_value=-(2**40), max_value=2**40), max_size=6),
    st.dictionaries(st.text(max_size=8), PACKABLE_INTS, max_size=4),
)


HEADER, TENSORS = golden_parts()
HEADER_BYTES = len(msgpack.packb(HEADER, use_bin_type=True))
HEADER_PATHS = list(header_paths(HEADER))
MAP_HEADER, MAP_TENSORS = golden_parts(MAP_HEADER_GOLDEN)
MAP_HEADER_PATHS = list(header_paths(MAP_HEADER))


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from(HEADER_PATHS), ABSURD), min_size=1, max_size=3))
def test_absurd_header_values(replacements):
    only_format_errors(pack_raw(_replaced(HEADER, replacements), TENSORS, VERSION))


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from(MAP_HEADER_PATHS), ABSURD), min_size=1, max_size=3))
def test_absurd_header_values_in_a_map_header(replacements):
    # old files are read forever, so their layout must stay as hard to abuse
    only_format_errors(pack_raw(_replaced(MAP_HEADER, replacements), MAP_TENSORS, MAP_HEADER_VERSION))


def _replaced(original, replacements):
    header = copy.deepcopy(original)
    for path, value in replacements:
        node = header
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed this path
    return header


@PROPERTY
@given(
    st.integers(min_value=0, max_value=len(MAP_HEADER["tensors"]) - 1),
    st.lists(st.integers(min_value=-(2**33), max_value=2**33), max_size=6),
)
def test_absurd_tensor_shapes(index, shape):
    # 5.x stores no shapes (they follow from 'model', whose fields are range-checked first)
    header = copy.deepcopy(MAP_HEADER)
    header["tensors"][index][1] = shape  # [name, shape, codec index, size]
    only_format_errors(pack_raw(header, MAP_TENSORS, MAP_HEADER_VERSION))


@settings(PROPERTY, max_examples=60)  # each case range-decodes the whole network (~0.3 s)
@given(st.lists(st.integers(0, len(TENSORS) * 8 - 1), min_size=1, max_size=8, unique=True))
def test_bit_flips_in_the_tensor_bytes_behind_a_valid_frame(positions):
    # Reaches the range decoder and the float32 steps with corrupted input.
    corrupted = bytearray(TENSORS)
    for position in positions:
        corrupted[position // 8] ^= 1 << (position % 8)
    only_format_errors(pack_raw(HEADER, bytes(corrupted), VERSION))


@PROPERTY
@given(st.integers(min_value=0, max_value=2**32 - 1).filter(lambda n: n != HEADER_BYTES), st.binary(max_size=64))
def test_absurd_header_length(declared, rest):
    with pytest.raises(KscFormatError):
        verify(pack_raw(HEADER, rest, VERSION, header_size=declared))


def test_frequencies_are_required_since_3x_and_refused_before():
    header, tensors = golden_parts(MAP_HEADER_GOLDEN)
    assert "frequencies" in header["model"]
    with pytest.raises(KscFormatError, match="'frequencies', which format 2.x does not define"):
        verify(pack_raw(header, tensors, (2, 0)))
    del header["model"]["frequencies"]
    with pytest.raises(KscFormatError, match="lacks 'frequencies', which format 4.x requires"):
        verify(pack_raw(header, tensors, MAP_HEADER_VERSION))


@pytest.mark.parametrize("name", ["features", "spheres", "layers", "width", "activation"])
def test_a_map_header_must_state_the_network_it_does_not_get_from_defaults(name):
    header, tensors = golden_parts(MAP_HEADER_GOLDEN)
    del header["model"][name]
    with pytest.raises(KscFormatError, match=f"header field 'model' lacks {name}"):
        verify(pack_raw(header, tensors, MAP_HEADER_VERSION))


def test_weighting_may_be_left_out_before_3x():
    data = (GOLDEN_FOLDER / "v2.0" / "torus.ksc").read_bytes()
    assert "weighting" not in golden_parts(data)[0]["model"]
    assert verify(data).config.weighting == "paper"


def test_feature_dim_is_required_since_4x_and_refused_before():
    header, tensors = golden_parts(MAP_HEADER_GOLDEN)
    assert header["model"]["feature_dim"] == 8
    with pytest.raises(KscFormatError, match="'feature_dim', which format 3.x does not define"):
        verify(pack_raw(header, tensors, (3, 0)))
    del header["model"]["feature_dim"]
    with pytest.raises(KscFormatError, match="lacks 'feature_dim', which format 4.x requires"):
        verify(pack_raw(header, tensors, MAP_HEADER_VERSION))
    # a 3.x reader's meaning, 29 features per sphere, does not fit this file's tensors
    with pytest.raises(KscFormatError, match="tensor '.*' has shape"):
        verify(pack_raw(header, tensors, (3, 0)))


@PROPERTY
@given(st.integers(min_value=0, max_value=255), st.integers(min_value=0, max_value=255))
def test_versions(major, minor):
    header, tensors = golden_parts()
    data = pack_raw(header, tensors, (major, minor))
    if major == VERSION[0]:
        verify(data)  # any minor of a known major is read
    elif major in READABLE_MAJORS:
        with pytest.raises(KscFormatError):  # read, as an older layout, and found wrong
            verify(data)
        if major < 5:  # and a 4.0 map header read as other known majors
            map_header = pack_raw(MAP_HEADER, MAP_TENSORS, (major, minor))
            if major == MAP_HEADER_VERSION[0]:
                verify(map_header)
            else:
                with pytest.raises(KscFormatError):
                    verify(map_header)
    else:
        with pytest.raises(KscFormatError, match=f"version {major}.{minor} is not supported; this ksc reads {READS}"):
            verify(data)
