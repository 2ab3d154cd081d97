"""Packed numbers: varints packed and unpacked in Python and decoded in numpy."""

from __future__ import annotations

import numpy


def _varints(numbers: list[int]) -> bytes:
    """Pack non-negative integers (a list) as varints: 7 bits a byte, low bits first."""
    if max(numbers, default=0) < 128:
        return bytes(numbers)
    out = bytearray()
    for n in numbers:
        while n >= 128:
            out.append((n & 127) | 128)
            n >>= 7
        out.append(n)
    return bytes(out)


def _unvarints(data: bytes) -> list[int]:
    if data.isascii():
        return list(data)
    out, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 127) << shift
        if byte < 128:
            out.append(value)
            value, shift = 0, 0
        else:
            shift += 7
    return out


def _np_varints(buf: numpy.ndarray) -> numpy.ndarray:
    """Decode a uint8 array of varints into int64 values, in numpy."""
    if not buf.size:
        return numpy.zeros(0, numpy.int64)
    ends = buf < 128
    if ends.all():
        return buf.astype(numpy.int64)
    starts = numpy.concatenate(([0], numpy.flatnonzero(ends)[:-1] + 1))
    group = numpy.cumsum(ends) - ends
    shift = (numpy.arange(buf.size) - starts[group]) * 7
    return numpy.add.reduceat((buf & 127).astype(numpy.int64) << shift, starts)


def _segmented_cumsum(values: numpy.ndarray, counts: numpy.ndarray) -> numpy.ndarray:
    """Cumulative sums that restart at each group of `counts` consecutive values."""
    total = numpy.cumsum(values)
    before = numpy.concatenate(([0], total))[numpy.cumsum(counts) - counts]
    return total - numpy.repeat(before, counts)


_HIGH = bytes(range(128, 256))
_VARINT = [_varints([n]) for n in range(1 << 14)]   # the packed numbers of two bytes or less
