"""Reading and writing the ``.ksc`` container (see ``format/SPEC.md``).

The reader checks every declared size against the limits below and against
the file's length before it allocates or decompresses anything, so a hostile
file costs at most a few megabytes and milliseconds.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import msgpack
import numpy as np
import zstandard

from ksc.errors import KscFormatError

from .codecs import codec_from_config
from .layout import MODEL_FIELDS, model_from_map, model_from_values, tensor_layout

MAGIC = b"\x89KSC"
VERSION = (5, 0)
"""The version a closed surface's file is written in; an open one's (holes kept, or a sheet) is :data:`OPEN_VERSION`."""
OPEN_VERSION = (5, 1)
"""5.1 appends the holes (header position 6) and, for a sheet, its shell's half-thickness (position 7); a 5.0
reader ignores them and decodes the surface capped, or the sheet's shell."""
MAX_HOLES, MAX_HOLE_POINTS = 256, 255
MIN_SHEET, MAX_SHEET = 1e-3, 0.25
"""The half-thicknesses a sheet's shell may have (normalized frame)."""
READABLE_MAJORS = (1, 2, 3, 4, 5)
STRUCTURAL = ("transform", "bound", "model")
OPEN_FIELDS = ("holes", "sheet")
"""The ``meta`` sections a 5.1 header stores in positions 6 and 7."""
"""The ``meta`` sections a 5.x header stores in fixed places; every other section goes to its ``info`` map."""
PREAMBLE = struct.Struct("<4sBB")  # magic, major, minor
HEADER_SIZE = struct.Struct("<I")  # first field of the decompressed body
TRAILER = struct.Struct("<I")  # CRC-32 of everything before it
ZSTD_LEVEL = 19  # the bytes are what a file is judged by; the body is a few KB, so the slow level costs nothing

MAX_BODY_BYTES = 16 * 1024 * 1024  # this and the limits below: SPEC.md, "Limits a reader enforces"
MAX_FILE_BYTES = MAX_BODY_BYTES + 1024 * 1024  # zstandard never expands data by more than a few bytes per 128 KiB
MAX_HEADER_BYTES = 64 * 1024
MAX_TENSORS = 256
MAX_TENSOR_VALUES = 4 * 1024 * 1024
MAX_DIMS = 4


@dataclass
class TensorRecord:
    """One stored tensor: its name, shape, codec and encoded bytes."""

    name: str
    shape: tuple[int, ...]
    codec: object
    data: bytes

    def decode(self) -> np.ndarray:
        """Dequantized values, float32 of ``shape``; KscFormatError if any is not finite."""
        values = self.codec.decode(self.data, self.shape)
        if not np.all(np.isfinite(values)):
            raise KscFormatError(f"tensor {self.name!r} decodes to non-finite values")
        return values


@dataclass
class Container:
    """Everything a ``.ksc`` file holds.

    ``meta`` holds the sections the codec defines (transform, model, bound,
    source, encoder); ``tensors`` the payload, in file order.
    """

    meta: dict
    tensors: list[TensorRecord] = field(default_factory=list)
    version: tuple[int, int] = VERSION
    sizes: dict[str, int] = field(default_factory=dict)
    """Byte counts found by the reader: file, compressed body, body, header."""

    def tensor_map(self) -> dict[str, np.ndarray]:
        """Decoded tensors by name."""
        return {record.name: record.decode() for record in self.tensors}


def write_container(container: Container) -> bytes:
    """Serialize ``container`` at the current version (5.0); the same container always gives the same bytes.

    The header is one msgpack array (``SPEC.md``): the transform and the model
    as bare values, each distinct codec config once, and per tensor only
    ``[codec index, size]``, in the order the model's tensor table gives
    (:func:`ksc.format.layout.tensor_layout`), which the tensors must follow.
    Format 4.0's map header spelled every key, name and shape: 5.0 stores the
    same tensors in ~200 fewer bytes (2.8 % of a default file).
    """
    meta = container.meta
    missing = [key for key in STRUCTURAL if key not in meta]
    if missing:
        raise KscFormatError(f"a container needs {missing} in its meta to be written")
    model = meta["model"]
    if not isinstance(model, dict) or set(model) != set(MODEL_FIELDS):
        raise KscFormatError(f"meta 'model' must be a map of exactly {MODEL_FIELDS}")
    layout = tensor_layout(model_from_map(model))
    found = [(record.name, tuple(record.shape)) for record in container.tensors]
    if found != layout:
        raise KscFormatError(f"tensors {found} are not the model's {layout}, in that order")
    codecs: list[dict] = []
    entries = []
    for record in container.tensors:
        config = record.codec.to_config()
        if config not in codecs:
            codecs.append(config)
        entries.append([codecs.index(config), len(record.data)])
    transform = meta["transform"]
    header = [
        [*transform["center"], transform["scale"]],
        meta["bound"],
        [model[name] for name in MODEL_FIELDS],
        codecs,
        entries,
        {key: value for key, value in meta.items() if key not in (*STRUCTURAL, *OPEN_FIELDS)},
    ]
    version = VERSION
    if meta.get("holes") or "sheet" in meta:
        header.append(check_holes(meta.get("holes", [])))
        version = OPEN_VERSION
    if "sheet" in meta:
        header.append(check_sheet(meta["sheet"]))
    header_bytes = msgpack.packb(header, use_bin_type=True)
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise KscFormatError(f"header of {len(header_bytes)} bytes exceeds the {MAX_HEADER_BYTES}-byte limit")
    body = HEADER_SIZE.pack(len(header_bytes)) + header_bytes + b"".join(r.data for r in container.tensors)
    compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True, write_checksum=False).compress(body)
    framed = PREAMBLE.pack(MAGIC, *version) + compressed
    return framed + TRAILER.pack(zlib.crc32(framed))


def read_file(path) -> bytes:
    """The bytes of the ``.ksc`` file at ``path``, refusing files too large to be one."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise KscFormatError(f"{path}: larger than {MAX_FILE_BYTES} bytes, the most a .ksc file can hold")
    return data


def read_container(data: bytes) -> Container:
    """Parse and validate ``.ksc`` bytes; any problem raises KscFormatError."""
    data = bytes(data)
    if len(data) > MAX_FILE_BYTES:
        raise KscFormatError(f"file is {len(data)} bytes; a .ksc file holds at most {MAX_FILE_BYTES}")
    if len(data) < PREAMBLE.size + TRAILER.size:
        raise KscFormatError(f"file is {len(data)} bytes, too short for a .ksc container (truncated?)")
    magic, major, minor = PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        raise KscFormatError("not a .ksc file: bad magic bytes")
    if major not in READABLE_MAJORS:
        readable = ", ".join(f"{m}.x" for m in READABLE_MAJORS)
        raise KscFormatError(f"format version {major}.{minor} is not supported; this ksc reads {readable}")
    (stored_crc,) = TRAILER.unpack_from(data, len(data) - TRAILER.size)
    if zlib.crc32(data[: -TRAILER.size]) != stored_crc:
        raise KscFormatError("checksum mismatch: the file is corrupted or truncated")

    body = _decompress(data[PREAMBLE.size : -TRAILER.size])
    if len(body) < HEADER_SIZE.size:
        raise KscFormatError("body is too short to hold a header length")
    (header_size,) = HEADER_SIZE.unpack_from(body)
    if header_size > min(MAX_HEADER_BYTES, len(body) - HEADER_SIZE.size):
        raise KscFormatError(f"header length {header_size} exceeds the limit or the body's {len(body)} bytes")
    header = _unpack_header(body[HEADER_SIZE.size : HEADER_SIZE.size + header_size])
    offset = HEADER_SIZE.size + header_size
    if major >= 5:
        meta, entries = _header_v5(header, minor)
    else:
        if not isinstance(header, dict):
            raise KscFormatError(f"a format {major}.x header must be a msgpack map")
        entries = _tensor_entries_v1(header) if major == 1 else _tensor_entries_v2(header)  # 3.x and 4.x as 2.x
        meta = {k: v for k, v in header.items() if k not in ("tensors", "codecs")}
    records = _checked_records(entries, len(body) - offset)

    tensors = []
    for name, shape, codec, size in records:
        tensors.append(TensorRecord(name, shape, codec, body[offset : offset + size]))
        offset += size
    sizes = {
        "file": len(data),
        "compressed_body": len(data) - PREAMBLE.size - TRAILER.size,
        "body": len(body),
        "header": header_size,
    }
    return Container(meta=meta, tensors=tensors, version=(major, minor), sizes=sizes)


def _unpack_header(blob: bytes) -> dict | list:
    try:
        header = msgpack.unpackb(
            blob,
            raw=False,
            strict_map_key=True,
            max_str_len=MAX_HEADER_BYTES,
            max_bin_len=0,
            max_array_len=MAX_TENSOR_VALUES,
            max_map_len=1024,
        )
    except Exception as error:  # msgpack raises several unrelated types for malformed input
        raise KscFormatError(f"header is not valid msgpack: {error}") from None
    return header


def _header_v5(header, minor: int) -> tuple[dict, list]:
    """Format 5.x: ``[transform, bound, model, codecs, tensors, info]``, and from 5.1 ``holes``; the meta map and
    the tensor entries.

    A newer minor may append elements, which this reader ignores.
    """
    if not isinstance(header, list) or len(header) < 6:
        raise KscFormatError("a format 5.x header must be a msgpack array [transform, bound, model, codecs, tensors, info]")
    transform, bound, model_values, configs, entries, info = header[:6]
    if not isinstance(transform, list) or len(transform) != 4:
        raise KscFormatError("header field 'transform' must be an array [x, y, z, scale]")
    model = model_from_values(model_values)
    if not isinstance(info, dict) or any(not isinstance(key, str) or key in STRUCTURAL for key in info):
        raise KscFormatError(f"header field 'info' must be a map with string keys other than {STRUCTURAL}")
    codecs = _codecs(configs)
    layout = tensor_layout(model)
    if not isinstance(entries, list) or len(entries) != len(layout):
        raise KscFormatError(f"header field 'tensors' must list {len(layout)} entries [codec index, size], one per model tensor")
    unpacked = []
    for index, ((name, shape), entry) in enumerate(zip(layout, entries, strict=True)):
        where = f"tensors[{index}] ({name})"
        if not isinstance(entry, list) or len(entry) != 2:
            raise KscFormatError(f"{where} must be an array [codec index, size]")
        codec_index = _int_value(entry[0], len(codecs) - 1, f"{where} codec index")
        unpacked.append((where, name, list(shape), codecs[codec_index], entry[1]))
    meta = {
        "transform": {"center": transform[:3], "scale": transform[3]},
        "bound": bound,
        "model": {name: getattr(model, name) for name in MODEL_FIELDS},
        **info,
    }
    for name in OPEN_FIELDS:  # only positions 6 and 7 say where holes are and whether the surface is a sheet
        meta.pop(name, None)
    if minor >= 1 and len(header) > 6 and check_holes(header[6]):
        meta["holes"] = header[6]
    if minor >= 1 and len(header) > 7:
        meta["sheet"] = check_sheet(header[7])
    return meta, unpacked


def check_holes(holes) -> list:
    """The 5.1 ``holes`` (SPEC.md, "Holes"), checked: 0 to :data:`MAX_HOLES` loops, each a flat list of 3 to
    :data:`MAX_HOLE_POINTS` points' x, y, z as integers 0..255; KscFormatError otherwise."""
    if not isinstance(holes, list) or len(holes) > MAX_HOLES:
        raise KscFormatError(f"header field 'holes' must be an array of 0 to {MAX_HOLES} loops")
    for index, loop in enumerate(holes):
        if (
            not isinstance(loop, list)
            or len(loop) % 3
            or not 3 <= len(loop) // 3 <= MAX_HOLE_POINTS
            or not all(isinstance(q, int) and not isinstance(q, bool) and 0 <= q <= 255 for q in loop)
        ):
            raise KscFormatError(
                f"holes[{index}] must be 3 to {MAX_HOLE_POINTS} points as a flat array of integers 0..255 (x, y, z each)"
            )
    return holes


def check_sheet(thickness) -> float:
    """The 5.1 ``sheet`` (SPEC.md, "Sheets"): the shell's half-thickness, a float in [:data:`MIN_SHEET`,
    :data:`MAX_SHEET`]; KscFormatError otherwise."""
    if not isinstance(thickness, float) or not MIN_SHEET <= thickness <= MAX_SHEET:
        raise KscFormatError(f"header field 'sheet' must be a float in [{MIN_SHEET}, {MAX_SHEET}], got {thickness!r}")
    return thickness


def _tensor_entries_v1(header: dict) -> list:
    """Format 1.x: ``tensors`` is a list of maps with ``name``, ``shape``, ``codec`` and ``size``."""
    entries = _field(header, "tensors", list)
    _check_tensor_count(entries)
    unpacked = []
    for index, entry in enumerate(entries):
        where = f"tensors[{index}]"
        if not isinstance(entry, dict):
            raise KscFormatError(f"{where} must be a map")
        codec = codec_from_config(entry.get("codec"))
        unpacked.append((where, entry.get("name"), entry.get("shape"), codec, entry.get("size")))
    return unpacked


def _tensor_entries_v2(header: dict) -> list:
    """Format 2.x: ``codecs`` lists codec configs; ``tensors`` lists ``[name, shape, codec index, size]``."""
    codecs = _codecs(_field(header, "codecs", list))
    entries = _field(header, "tensors", list)
    _check_tensor_count(entries)
    unpacked = []
    for index, entry in enumerate(entries):
        where = f"tensors[{index}]"
        if not isinstance(entry, list) or len(entry) != 4:
            raise KscFormatError(f"{where} must be an array [name, shape, codec index, size]")
        name, shape, codec_index, size = entry
        codec_index = _int_value(codec_index, len(codecs) - 1, f"{where} codec index")
        unpacked.append((where, name, shape, codecs[codec_index], size))
    return unpacked


def _codecs(configs) -> list:
    """The codecs of a 2.x to 5.x header's ``codecs`` array, each config validated."""
    if not isinstance(configs, list) or not configs or len(configs) > MAX_TENSORS:
        raise KscFormatError(f"header field 'codecs' must list 1 to {MAX_TENSORS} codecs")
    return [codec_from_config(config) for config in configs]


def _check_tensor_count(entries: list) -> None:
    if len(entries) > MAX_TENSORS:
        raise KscFormatError(f"{len(entries)} tensors exceed the limit of {MAX_TENSORS}")


def _checked_records(entries: list, data_size: int) -> list:
    """``(name, shape, codec, size)`` per tensor, after checking names, shapes and sizes."""
    records, names, total = [], set(), 0
    for where, name, shape, codec, size in entries:
        if not isinstance(name, str) or not name or name in names:
            raise KscFormatError(f"{where}.name must be a unique non-empty string, got {name!r}")
        names.add(name)
        if (
            not isinstance(shape, list)
            or not 1 <= len(shape) <= MAX_DIMS
            or not all(isinstance(n, int) and not isinstance(n, bool) and 0 < n <= MAX_TENSOR_VALUES for n in shape)
        ):
            raise KscFormatError(f"{where}.shape must be a list of 1 to {MAX_DIMS} positive sizes, got {shape!r}")
        shape = tuple(shape)
        if int(np.prod(shape, dtype=np.int64)) > MAX_TENSOR_VALUES:
            raise KscFormatError(f"{where}.shape {shape} exceeds the limit of {MAX_TENSOR_VALUES} values")
        size = _int_value(size, MAX_BODY_BYTES, f"{where}.size")
        try:
            codec.check_size(shape, size)
        except KscFormatError as error:
            raise KscFormatError(f"{where}: {error}") from None
        total += size
        records.append((name, shape, codec, size))
    if total != data_size:
        raise KscFormatError(f"tensor sizes add up to {total} bytes but {data_size} bytes follow the header")
    return records


def _decompress(frame: bytes) -> bytes:
    try:
        # The frame's declared size is checked before zstandard allocates it.
        declared = zstandard.get_frame_parameters(frame).content_size
    except zstandard.ZstdError as error:
        raise KscFormatError(f"body is not a zstandard frame: {error}") from None
    if not 0 < declared <= MAX_BODY_BYTES:
        raise KscFormatError(f"body declares {declared} decompressed bytes; the limit is {MAX_BODY_BYTES}")
    length = _frame_length(frame)
    if length != len(frame):
        raise KscFormatError(f"{len(frame) - length} unexpected bytes after the compressed body")
    try:
        body = zstandard.ZstdDecompressor().decompress(frame, max_output_size=declared)
    except zstandard.ZstdError as error:
        raise KscFormatError(f"body does not decompress: {error}") from None
    if len(body) != declared:
        raise KscFormatError(f"body decompresses to {len(body)} bytes, its frame declares {declared}")
    return body


def _frame_length(frame: bytes) -> int:
    """Length of the zstandard frame at the start of ``frame``, from its block headers.

    zstandard's one-shot decompression stops at the end of the first frame and
    ignores what follows; the container allows nothing there.
    """
    try:
        offset = zstandard.frame_header_size(frame)
    except zstandard.ZstdError as error:
        raise KscFormatError(f"body is not a zstandard frame: {error}") from None
    has_checksum = bool(frame[4] & 0x04)
    while True:
        if offset + 3 > len(frame):
            raise KscFormatError("compressed body is truncated inside a block header")
        block = int.from_bytes(frame[offset : offset + 3], "little")
        last, kind, size = block & 1, (block >> 1) & 3, block >> 3
        if kind == 3:
            raise KscFormatError("compressed body has a reserved block type")
        offset += 3 + (1 if kind == 1 else size)  # an RLE block stores one byte
        if last:
            return offset + (4 if has_checksum else 0)


def _field(mapping: dict, key: str, kind: type):
    value = mapping.get(key)
    if not isinstance(value, kind):
        raise KscFormatError(f"header field {key!r} is missing or not a {kind.__name__}")
    return value


def _int_value(value, limit: int, label: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise KscFormatError(f"{label} must be an integer in [0, {limit}], got {value!r}")
    return value
