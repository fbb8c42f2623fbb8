"""Decimal numbers of a G-code chunk parsed eight bytes at a time, with numpy only.

:func:`numpy.fromstring` parses about 60 ns per number here, a third of the whole analysis of
a raster file (two numbers per 10-byte line). Nearly every number in real G-code has at most
eight characters (``-123.456``, ``12.4``, ``220``), so each one fits a 64-bit word read at
its start (an overlapping, unaligned view of the text). Per word, with whole-array integer
operations: drop the sign, find the dot (a zero-byte test), close the gap it leaves, and turn
the eight ASCII digits into an integer with the usual three multiply-and-shift steps (pairs,
quads, octets). The value is that integer divided by a power of ten: both are exact doubles
(the integer is below 10⁸), so the quotient is the correctly rounded decimal value, bit for
bit what ``strtod`` (and so the reference path's ``float``) gives. Longer numbers are parsed
one by one with ``float``; a chunk with many of them goes back to :func:`numpy.fromstring`.
"""

from __future__ import annotations

import numpy as np

_U = np.uint64
_LOW7 = _U(0x7F7F7F7F7F7F7F7F)
_DOTS = _U(0x2E2E2E2E2E2E2E2E)
_ZEROS = _U(0x3030303030303030)
#: ``_MASK[k]``: the low k bytes of a word.
_MASK = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
_SHIFT = np.array([8 * k for k in range(9)], dtype=np.uint64)
#: ``(1 << 8k) * _BYTE_INDEX`` holds k in its top byte (k = 0..7).
_BYTE_INDEX = _U(0x0001020304050607)
_POW10 = np.array([10.0**k for k in range(9)])


def parse_numbers(text: bytes, start: np.ndarray, length: np.ndarray) -> np.ndarray | None:
    """The numbers ``text[start:start+length]`` as float64; None when more than one in eight
    is longer than eight characters (the caller then parses them all another way).

    Each number is an optional ``-`` and digits with at least one of them: the caller has
    checked that shape (bytes and signs). A number with two dots raises :class:`ValueError`
    (found here for free: the dot test below marks each dot of a word).
    """
    n = start.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    long = length > 8
    n_long = int(np.count_nonzero(long))
    if n_long * 8 > n:
        return None
    # The word at each start from the two aligned words around it.
    aligned = np.zeros(len(text) // 8 + 2, dtype="<u8")
    aligned.view(np.uint8)[: len(text)] = np.frombuffer(text, dtype=np.uint8)
    at = start >> 3
    sh = _SHIFT[start & 7]
    words = (aligned[at] >> sh) | ((aligned[at + 1] << _U(1)) << (_U(63) - sh))
    given = length
    length = length.astype(np.int64)
    neg = (words & _U(0xFF)) == _U(45)
    if neg.any():
        words >>= _SHIFT[neg.view(np.uint8)]
        length -= neg
    np.minimum(length, 8, out=length)
    words &= _MASK[length]
    # Zero-byte test on words ^ "........": the high bit of the byte that was a dot (one at
    # most), then its index from a multiplication.
    x = words ^ _DOTS
    y = ~(((x & _LOW7) + _LOW7) | x | _LOW7) >> _U(7)
    if (y & (y - _U(1))).any():  # two dots in one number
        raise ValueError("a number with two dots")
    has_dot = y != 0
    dot = ((y * _BYTE_INDEX) >> _U(56)).astype(np.int64)
    np.copyto(dot, length, where=~has_dot)
    # Close the gap: the bytes after the dot move down one.
    low = _MASK[dot]
    words = (words & low) | ((words >> _U(8)) & ~low)
    ndig = length - has_dot
    frac = length - dot - has_dot
    # ASCII digits to values, right-aligned in the word (leading zero digits fill the left).
    words -= _ZEROS & _MASK[ndig]
    words <<= _SHIFT[8 - ndig]
    words = ((words & _U(0x0F0F0F0F0F0F0F0F)) * _U(2561)) >> _U(8)
    words = ((words & _U(0x00FF00FF00FF00FF)) * _U(6553601)) >> _U(16)
    words = ((words & _U(0x0000FFFF0000FFFF)) * _U(42949672960001)) >> _U(32)
    values: np.ndarray = words.astype(np.float64) / _POW10[frac]
    np.negative(values, out=values, where=neg)
    if n_long:
        for i in np.flatnonzero(long).tolist():
            s = int(start[i])
            values[i] = float(text[s : s + int(given[i])])  # ValueError for two dots
    return values
