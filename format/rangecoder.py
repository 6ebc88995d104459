"""Adaptive binary range coding of signed integers (the ``uniform_ac`` codec's back end).

Each integer is binarized and every binary decision is coded with an adaptive
probability, so the coder learns each tensor's distribution as it goes and no
table is stored. Quantized weights of a small network are too few (a few
hundred to a thousand per tensor) for a stored histogram to pay; zstandard
finds almost no repeats in them (bunny: 7402 bytes of 8-bit weights and row
parameters -> ~7383).

Binarization of ``v`` (all decisions adaptive, each with its own context):

1. ``v == 0``?
2. sign;
3. ``m = |v|`` written as Elias gamma: ``n = bit_length(m) - 1`` in unary
   (context per position), then the ``n`` bits below the leading one, most
   significant first (context per ``(n, position)``).

The arithmetic is the classic carry-less range coder with a byte cache
(32-bit range, 12-bit probabilities); the leading byte it always emits is
dropped, it ends on the value of its final interval with the most trailing
zero bits, zero bytes among the four it flushes at the end are trimmed, and the
decoder reads zeros past the end. Decoding is bounded: ``count`` integers of
at most ``MAX_MAGNITUDE_BITS`` bits, whatever the bytes say; and since no
decision is more probable than 59/60 (:class:`_Contexts`), each value costs at
least 0.024 bits, so a stream of ``n`` bytes holds at most
:func:`max_values` values, which lets a reader refuse a tiny payload that
claims millions of values before decoding anything.
"""

from __future__ import annotations

import numpy as np

from ksc.errors import KscFormatError

PROBABILITY_BITS = 12  # SPEC.md, "The range coder": p0 in 1..4095
_ONE = 1 << PROBABILITY_BITS
_TOP = 1 << 24
_MASK32 = 0xFFFFFFFF
MAX_MAGNITUDE_BITS = 30
"""Largest ``|v|`` is ``2**30 - 1``; an unary prefix longer than this is a corrupted stream."""
_ADAPT_LIMIT = 60
"""Counts are halved past this total, so the model keeps adapting along a tensor."""
_FLUSH_BYTES = 4


def max_values(stream_bytes: int) -> int:
    """An upper bound on how many integers ``stream_bytes`` bytes can hold.

    The decoder reads at most ``_FLUSH_BYTES + 1`` bytes past the end, every
    integer takes at least one decision, and a decision costs at least
    ``-log2(4027 / 4096) = 0.0245`` bits: 8 / 0.0245 = 327 per byte; 400 leaves a margin.
    """
    return 400 * (stream_bytes + _FLUSH_BYTES + 1)


def _zero_probability(zeros: int, ones: int) -> int:
    """The probability of a zero, out of ``_ONE``, after ``zeros`` and ``ones`` counts (clamped away from 0 and 1)."""
    p = (zeros * _ONE) // (zeros + ones)
    return min(max(p, 1), _ONE - 1)


def _updated(zeros: int, ones: int, bit: int) -> tuple[int, int]:
    """The counts after coding ``bit``: its count grows by 2, and both are halved past ``_ADAPT_LIMIT``."""
    if bit:
        ones += 2
    else:
        zeros += 2
    if zeros + ones > _ADAPT_LIMIT:
        zeros, ones = (zeros + 1) // 2, (ones + 1) // 2
    return zeros, ones


class _Contexts:
    """Adaptive bit probabilities from counts (Krichevsky-Trofimov start, halved when large)."""

    def __init__(self):
        self._counts: dict = {}

    def zero_probability(self, context) -> int:
        return _zero_probability(*self._counts.get(context, (1, 1)))

    def update(self, context, bit: int) -> None:
        self._counts[context] = _updated(*self._counts.get(context, (1, 1)), bit)


class _Encoder:
    def __init__(self):
        self.low, self.range, self.cache, self.pending = 0, _MASK32, 0, 1
        self.out = bytearray()
        self.contexts = _Contexts()

    def bit(self, context, bit: int) -> None:
        bound = (self.range >> PROBABILITY_BITS) * self.contexts.zero_probability(context)
        if bit:
            self.low += bound
            self.range -= bound
        else:
            self.range = bound
        self.contexts.update(context, bit)
        while self.range < _TOP:
            self.range = (self.range << 8) & _MASK32
            self._shift_low()

    def _shift_low(self) -> None:
        if self.low < 0xFF000000 or self.low > _MASK32:
            carry = self.low >> 32
            self.out.append((self.cache + carry) & 0xFF)
            self.out.extend(bytes([(0xFF + carry) & 0xFF]) * (self.pending - 1))
            self.pending = 0
            self.cache = (self.low >> 24) & 0xFF
        self.pending += 1
        self.low = (self.low & 0x00FFFFFF) << 8

    def finish(self) -> bytes:
        # Any value in [low, low + range) decodes the same; the one with the most trailing
        # zero bits leaves zero bytes that are trimmed (range >= 2**24 here, so at most one
        # flushed byte is not zero): ~3 bytes less per stream than flushing low itself.
        for shift in range(32, -1, -1):
            mask = (1 << shift) - 1
            rounded = (self.low + mask) & ~mask
            if rounded < self.low + self.range:
                self.low = rounded
                break
        for _ in range(_FLUSH_BYTES + 1):
            self._shift_low()
        body, flushed = self.out[1:-_FLUSH_BYTES], self.out[-_FLUSH_BYTES:]
        return bytes(body + flushed.rstrip(b"\x00"))


def encode_integers(values: np.ndarray) -> bytes:
    """Range-code a flat array of integers with ``|v| < 2**MAX_MAGNITUDE_BITS``."""
    values = np.asarray(values).reshape(-1)
    if values.size and int(np.abs(values).max()) >= 1 << MAX_MAGNITUDE_BITS:
        raise ValueError(f"integers must be smaller than 2**{MAX_MAGNITUDE_BITS} in magnitude")
    encoder = _Encoder()
    for value in values.tolist():
        encoder.bit("zero", value == 0)
        if value == 0:
            continue
        encoder.bit("sign", value < 0)
        magnitude = abs(value)
        length = magnitude.bit_length() - 1
        for position in range(length):
            encoder.bit(("unary", position), 1)
        if length < MAX_MAGNITUDE_BITS - 1:
            encoder.bit(("unary", length), 0)
        for position in range(length - 1, -1, -1):
            encoder.bit(("mantissa", length, position), (magnitude >> position) & 1)
    return encoder.finish()


def decode_integers(data: bytes, count: int) -> np.ndarray:
    """The ``count`` integers (int64) that :func:`encode_integers` coded into ``data``.

    Raises KscFormatError when the stream cannot be what the encoder wrote:
    a magnitude prefix past ``MAX_MAGNITUDE_BITS``, or bytes left unread.

    The decoder is the encoder's arithmetic in one loop over local variables,
    with contexts numbered instead of named and their counts as states of
    :func:`_state_tables`: a decode is ~70 000 decisions in pure
    Python, and this form takes a fraction of the time of method calls,
    tuple-keyed dictionaries and a division per decision.
    """
    data = bytes(data)
    size = len(data)
    probability, after_zero, after_one = _state_tables()
    states = [_START] * _CONTEXTS
    code = int.from_bytes(data[:4].ljust(4, b"\x00"), "big")
    span, position = _MASK32, 4
    values = [0] * count

    def bit(context: int) -> int:
        nonlocal code, span, position
        state = states[context]
        bound = (span >> PROBABILITY_BITS) * probability[state]
        if code < bound:
            span, result = bound, 0
            states[context] = after_zero[state]
        else:
            code -= bound
            span -= bound
            result = 1
            states[context] = after_one[state]
        while span < _TOP:
            span = (span << 8) & _MASK32
            code = ((code << 8) | (data[position] if position < size else 0)) & _MASK32
            position += 1
        return result

    for index in range(count):
        if bit(_ZERO):
            continue
        negative = bit(_SIGN)
        length = 0
        while length < MAX_MAGNITUDE_BITS - 1 and bit(_UNARY + length):
            length += 1
        magnitude = 1
        base = _MANTISSA + length * MAX_MAGNITUDE_BITS
        for place in range(length - 1, -1, -1):
            magnitude = (magnitude << 1) | bit(base + place)
        values[index] = -magnitude if negative else magnitude
    if size > position:
        raise KscFormatError(f"range-coded stream has {size - position} bytes past its end")
    return np.array(values, dtype=np.int64)


# Context numbers of the decoder: the encoder's named contexts ("zero", "sign", ("unary", n), ("mantissa", n, k)).
_ZERO, _SIGN, _UNARY = 0, 1, 2
_MANTISSA = _UNARY + MAX_MAGNITUDE_BITS
_CONTEXTS = _MANTISSA + MAX_MAGNITUDE_BITS * MAX_MAGNITUDE_BITS

_STATE_STRIDE = 64
"""A context's counts ``(zeros, ones)``, each below 64 (their total is halved past ``_ADAPT_LIMIT``), as the
state ``zeros * 64 + ones``."""
_START = 1 * _STATE_STRIDE + 1
_TABLES: tuple[list[int], list[int], list[int]] | None = None


def _state_tables() -> tuple[list[int], list[int], list[int]]:
    """Per state: the probability of a zero (:func:`_zero_probability`) and the states after a zero and after
    a one (:func:`_updated`); built once, on the first decode."""
    global _TABLES
    if _TABLES is None:
        size = _STATE_STRIDE * _STATE_STRIDE
        probability, after_zero, after_one = [1] * size, [_START] * size, [_START] * size
        for zeros in range(1, _STATE_STRIDE):
            for ones in range(1, _STATE_STRIDE - zeros):
                state = zeros * _STATE_STRIDE + ones
                probability[state] = _zero_probability(zeros, ones)
                for bit, table in ((0, after_zero), (1, after_one)):
                    z, o = _updated(zeros, ones, bit)
                    table[state] = z * _STATE_STRIDE + o
        _TABLES = (probability, after_zero, after_one)
    return _TABLES
