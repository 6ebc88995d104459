"""Tensor codecs: how one named tensor's values become payload bytes.

Each codec has an ``id`` and a config (a msgpack-friendly dict) that
round-trips through :func:`codec_from_config`, in the spirit of numcodecs.
All are lossy uniform quantizers.

* ``uniform``: ``value = low + q * step`` with ``q`` in ``[0, 2**bits - 1]``
  stored as uint8 (bits <= 8) or uint16; one ``(low, step)`` for the tensor,
  or one per slice along ``axis``, in the config (float64 in the header).
* ``uniform_rows``: the same with one ``(low, step)`` per row of a 2-D tensor,
  stored as float16 pairs at the start of the payload (format 1.0's weights).
* ``uniform_ac``: ``value = q * step`` with one float32 ``step`` per tensor
  and signed ``q`` range-coded (:mod:`ksc.format.rangecoder`); format 2.0's
  weights. Its size depends on the values, so it has no fixed size per shape.
* ``sorted_uniform_ac``: ``uniform`` per column of a 2-D tensor whose row
  order carries no meaning (the key spheres): rows are stored sorted, the
  first column as differences, everything range-coded; format 2.0's spheres.
"""

from __future__ import annotations

import numpy as np

from ksc.errors import KscFormatError

from .rangecoder import decode_integers, encode_integers, max_values

MAX_BITS = 16  # SPEC.md, "Tensor codecs": integers stored as u8 or u16
STEP_EXPONENT_OFFSET = 2.0
"""``uniform_ac`` at ``bits`` uses ``step = rms(values) * 2**(STEP_EXPONENT_OFFSET - bits)``:
on the bunny's trained weights this step is close to the mean row step of
``uniform_rows`` at the same bits, so a preset keeps about the error it had."""


def _integer_dtype(bits: int) -> np.dtype:
    return np.dtype("<u1") if bits <= 8 else np.dtype("<u2")


def _check_bits(bits) -> int:
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= MAX_BITS:
        raise KscFormatError(f"codec field 'bits' must be an integer in [1, {MAX_BITS}], got {bits!r}")
    return bits


def _float_array(values, name: str) -> np.ndarray:
    """A flat float64 array from numbers (a list from a header, or an array from the encoder)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values.astype(np.float64).reshape(-1)
    if not isinstance(values, list | tuple) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < 2**63 for v in values
    ):
        raise KscFormatError(f"codec 'uniform' field {name!r} must be a list of numbers, got {values!r:.80}")
    return np.asarray(values, dtype=np.float64)


def _quantize(values: np.ndarray, low: np.ndarray, step: np.ndarray, bits: int) -> np.ndarray:
    q = np.rint((values - low) / step)
    return np.clip(q, 0, 2**bits - 1).astype(_integer_dtype(bits))


def _fit_step(low: np.ndarray, high: np.ndarray, bits: int) -> np.ndarray:
    step = (high - low) / (2**bits - 1)
    # A constant slice (a one-element bias, say) has no range; any positive step
    # decodes it exactly, since q is then 0.
    return np.where(step > 0.0, step, 1.0)


def _float16_toward(values: np.ndarray, direction: float) -> np.ndarray:
    """float16 nearest to ``values``, moved one ulp towards ``direction`` where it fell on the wrong side."""
    rounded = values.astype(np.float16)
    wrong = rounded < values if direction > 0 else rounded > values
    return np.where(wrong, np.nextafter(rounded, np.float16(direction)), rounded)


class UniformCodec:
    """Uniform quantizer with parameters in the header.

    Parameters
    ----------
    bits : int
        Bits per value (1..16).
    low, step : sequence of float
        One value for the whole tensor (``axis`` None) or one per index along ``axis``.
    axis : int or None
        Axis the parameters vary along.
    """

    id = "uniform"

    def __init__(self, bits: int, low, step, axis: int | None = None):
        self.bits = _check_bits(bits)
        self.low = _float_array(low, "low")
        self.step = _float_array(step, "step")
        self.axis = axis
        if self.low.shape != self.step.shape or not len(self.low):
            raise KscFormatError("codec 'uniform' needs 'low' and 'step' lists of the same non-zero length")
        if not (np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.step)) and np.all(self.step > 0)):
            raise KscFormatError("codec 'uniform' has a non-finite 'low' or a non-positive 'step'")
        if axis is not None and (not isinstance(axis, int) or isinstance(axis, bool) or axis < 0):
            raise KscFormatError(f"codec 'uniform' field 'axis' must be null or a non-negative integer, got {axis!r}")
        if axis is None and len(self.low) != 1:
            raise KscFormatError("codec 'uniform' without 'axis' must have exactly one 'low' and 'step'")

    @classmethod
    def fit(cls, values: np.ndarray, bits: int) -> UniformCodec:
        """Min-max parameters for the whole of ``values``."""
        low, high = np.array([values.min()]), np.array([values.max()])
        return cls(bits, low, _fit_step(low, high, bits))

    @classmethod
    def over_range(cls, bits: int, low, high, axis: int | None = None) -> UniformCodec:
        """Fixed range ``[low, high]`` (per index along ``axis`` when lists)."""
        low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        return cls(bits, low, _fit_step(low, high, bits), axis)

    def to_config(self) -> dict:
        return {"id": self.id, "bits": self.bits, "axis": self.axis, "low": self.low.tolist(), "step": self.step.tolist()}

    def _broadcast(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        if self.axis is None:
            return self.low, self.step
        if self.axis >= len(shape) or shape[self.axis] != len(self.low):
            raise KscFormatError(
                f"codec 'uniform' has {len(self.low)} parameters, tensor shape {shape} needs one per axis {self.axis}"
            )
        view = [1] * len(shape)
        view[self.axis] = -1
        return self.low.reshape(view), self.step.reshape(view)

    def encoded_size(self, shape: tuple[int, ...]) -> int:
        return int(np.prod(shape, dtype=np.int64)) * _integer_dtype(self.bits).itemsize

    def check_size(self, shape: tuple[int, ...], size: int) -> None:
        _check_fixed_size(self, shape, size)

    def encode(self, values: np.ndarray) -> bytes:
        low, step = self._broadcast(values.shape)
        return _quantize(np.asarray(values, dtype=np.float64), low, step, self.bits).tobytes()

    def decode(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        low, step = self._broadcast(shape)
        q = np.frombuffer(data, dtype=_integer_dtype(self.bits)).reshape(shape)
        return (low + q * step).astype(np.float32)


class RowUniformCodec:
    """Uniform quantizer with one float16 ``(low, step)`` pair per row of a 2-D tensor."""

    id = "uniform_rows"
    _params = np.dtype("<f2")

    def __init__(self, bits: int):
        self.bits = _check_bits(bits)

    def to_config(self) -> dict:
        return {"id": self.id, "bits": self.bits}

    @staticmethod
    def _rows(shape: tuple[int, ...]) -> int:
        if len(shape) != 2:
            raise KscFormatError(f"codec 'uniform_rows' needs a 2-D tensor, got shape {shape}")
        return shape[0]

    def encoded_size(self, shape: tuple[int, ...]) -> int:
        rows = self._rows(shape)
        return rows * 2 * self._params.itemsize + int(np.prod(shape, dtype=np.int64)) * _integer_dtype(self.bits).itemsize

    def check_size(self, shape: tuple[int, ...], size: int) -> None:
        _check_fixed_size(self, shape, size)

    def encode(self, values: np.ndarray) -> bytes:
        values = np.asarray(values, dtype=np.float64)
        self._rows(values.shape)
        # Round low down and step up to float16, so that every value still lies
        # in [low, low + (2**bits - 1) * step] and the error stays within step / 2.
        low = _float16_toward(values.min(axis=1), -np.inf)
        step = _fit_step(low.astype(np.float64), values.max(axis=1), self.bits)
        step = _float16_toward(step, np.inf)
        q = _quantize(values, low.astype(np.float64)[:, None], step.astype(np.float64)[:, None], self.bits)
        return np.column_stack([low, step]).astype(self._params).tobytes() + q.tobytes()

    def decode(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        rows = self._rows(shape)
        split = rows * 2 * self._params.itemsize
        params = np.frombuffer(data[:split], dtype=self._params).reshape(rows, 2).astype(np.float64)
        if not (np.all(np.isfinite(params)) and np.all(params[:, 1] > 0)):
            raise KscFormatError("codec 'uniform_rows' has a non-finite or non-positive row parameter")
        q = np.frombuffer(data[split:], dtype=_integer_dtype(self.bits)).reshape(shape)
        return (params[:, :1] + q * params[:, 1:]).astype(np.float32)


def _check_fixed_size(codec, shape: tuple[int, ...], size: int) -> None:
    if size != codec.encoded_size(shape):
        raise KscFormatError(f"size {size} does not fit shape {shape} with codec {codec.id!r}")


def rms_step(rms: float, bits: int) -> float:
    """The ``uniform_ac`` step for values of root mean square ``rms`` at ``bits``."""
    return rms * 2.0 ** (STEP_EXPONENT_OFFSET - bits) if rms > 0 else 1.0


class ArithmeticUniformCodec:
    """Zero-centred uniform quantizer, one float32 step per tensor, range-coded integers.

    With an entropy coder, one step for the whole tensor spends bits where the
    values are and stores no per-row parameters (888 of the bunny's 8703 bytes
    in format 1.0).
    """

    id = "uniform_ac"
    _step = np.dtype("<f4")
    _max_bytes_per_value = 90  # 60 binary decisions of at most 12 bits each

    def __init__(self, bits: int):
        self.bits = _check_bits(bits)

    def to_config(self) -> dict:
        return {"id": self.id, "bits": self.bits}

    def check_size(self, shape: tuple[int, ...], size: int) -> None:
        count = int(np.prod(shape, dtype=np.int64))
        stream = size - self._step.itemsize
        if not 0 <= stream <= self._max_bytes_per_value * count or count > max_values(stream):
            raise KscFormatError(f"size {size} is impossible for shape {shape} with codec {self.id!r}")

    def step_for(self, values: np.ndarray, scale: float = 1.0) -> np.float32:
        """The stored step for ``values``: :func:`rms_step` at this codec's bits, times ``scale``.

        ``scale`` is the writer's choice per tensor (``ksc.encoding.step_allocation``);
        a reader needs only the stored step.
        """
        return np.float32(rms_step(float(np.sqrt(np.mean(np.square(values, dtype=np.float64)))), self.bits) * scale)

    def encode(self, values: np.ndarray, scale: float = 1.0) -> bytes:
        """``values`` quantized at :meth:`step_for` (``values``, ``scale``), range-coded after the step."""
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"step scale must be finite and positive, got {scale}")
        step = self.step_for(values, scale)
        q = np.rint(np.asarray(values, dtype=np.float64) / np.float64(step)).astype(np.int64)
        return step.astype(self._step).tobytes() + encode_integers(q)

    def decode(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        self.check_size(shape, len(data))
        step = float(np.frombuffer(data[: self._step.itemsize], dtype=self._step)[0])
        if not (np.isfinite(step) and step > 0):
            raise KscFormatError(f"codec {self.id!r} has a non-finite or non-positive step")
        q = decode_integers(data[self._step.itemsize :], int(np.prod(shape, dtype=np.int64)))
        return (q.reshape(shape) * step).astype(np.float32)


class SortedUniformCodec(UniformCodec):
    """Per-column uniform quantizer for a set of rows: sorted, delta-coded, range-coded.

    The network sums over its spheres, so their order is free; sorted rows
    make the first column a slowly rising sequence whose differences are
    small. Decoding returns the rows in sorted order (the encoder sorts the
    spheres before training, so the network sees that order too). The encoder
    puts ``low`` and ``step`` on the grid the centres come from, so each centre
    coordinate is a node index (the bunny's 128 spheres: 305 bytes, against
    ~720 as 12-bit codes through zstandard).
    """

    id = "sorted_uniform_ac"

    def __init__(self, bits: int, low, step):
        super().__init__(bits, low, step, axis=1)

    @classmethod
    def over_range(cls, bits: int, low, high) -> SortedUniformCodec:
        low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        return cls(bits, low, _fit_step(low, high, bits))

    def to_config(self) -> dict:
        return {"id": self.id, "bits": self.bits, "low": self.low.tolist(), "step": self.step.tolist()}

    def _columns(self, shape: tuple[int, ...]) -> int:
        if len(shape) != 2 or shape[1] != len(self.low):
            raise KscFormatError(f"codec {self.id!r} has {len(self.low)} columns, tensor shape is {shape}")
        return shape[1]

    def check_size(self, shape: tuple[int, ...], size: int) -> None:
        self._columns(shape)
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= size <= ArithmeticUniformCodec._max_bytes_per_value * count or count > max_values(size):
            raise KscFormatError(f"size {size} is impossible for shape {shape} with codec {self.id!r}")

    def sort(self, values: np.ndarray) -> np.ndarray:
        """``values`` with their rows in the order the file stores them (lexicographic by the quantized columns)."""
        q = self._integers(values)
        return np.asarray(values)[np.lexsort(q[:, ::-1].T)]

    def _integers(self, values: np.ndarray) -> np.ndarray:
        self._columns(values.shape)
        low, step = self._broadcast(values.shape)
        return _quantize(np.asarray(values, dtype=np.float64), low, step, self.bits).astype(np.int64)

    def encode(self, values: np.ndarray) -> bytes:
        q = self._integers(values)
        q = q[np.lexsort(q[:, ::-1].T)]
        q[:, 0] = np.diff(q[:, 0], prepend=0)
        return encode_integers(q.T.reshape(-1))

    def decode(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        self.check_size(shape, len(data))
        q = decode_integers(data, int(np.prod(shape, dtype=np.int64))).reshape(shape[1], shape[0]).T.copy()
        q[:, 0] = np.cumsum(q[:, 0])
        if q.min(initial=0) < 0 or q.max(initial=0) > 2**self.bits - 1:
            raise KscFormatError(f"codec {self.id!r} decodes integers outside [0, 2**{self.bits} - 1]")
        low, step = self._broadcast(shape)
        return (low + q * step).astype(np.float32)


CODECS = {codec.id: codec for codec in (UniformCodec, RowUniformCodec, ArithmeticUniformCodec, SortedUniformCodec)}


def codec_from_config(config) -> UniformCodec | RowUniformCodec | ArithmeticUniformCodec | SortedUniformCodec:
    """Rebuild a codec from its config; unknown ids or fields raise KscFormatError."""
    if not isinstance(config, dict) or "id" not in config:
        raise KscFormatError("tensor codec must be a map with an 'id'")
    config = dict(config)
    codec_id = config.pop("id")
    if not isinstance(codec_id, str) or codec_id not in CODECS:
        raise KscFormatError(f"unknown tensor codec {codec_id!r} (this ksc knows {sorted(CODECS)})")
    try:
        return CODECS[codec_id](**config)
    except TypeError as error:
        raise KscFormatError(f"codec {codec_id!r} has bad fields: {error}") from None
