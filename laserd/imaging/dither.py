"""Dithering: Bayer ordered dither and error diffusion fast enough for megapixel images.

Error diffusion is sequential along a row (a pixel's error feeds its right neighbour), which
makes a plain Python loop cost about a microsecond per pixel. But with a kernel that reaches at
most ``-dc`` columns back on the next rows, pixel ``(r, c)`` only depends on pixels processed
earlier along the "wavefront" ``t = c + k·r`` (``k`` just large enough for every kernel entry),
so all pixels on one wavefront are independent. Storing the band skewed — row ``r`` shifted by
``k·r`` columns and transposed — turns each wavefront into one contiguous numpy slice and each
kernel entry into an in-place slice addition: some ``W + k·B`` numpy steps per band of ``B``
rows instead of ``W·B`` Python iterations. Floyd–Steinberg itself uses Pillow's C
implementation, which is faster still.
"""

from __future__ import annotations

import math

import numpy as np

#: Error-diffusion kernels: divisor and (row offset, column offset, weight) entries.
KERNELS: dict[str, tuple[int, tuple[tuple[int, int, int], ...]]] = {
    "floyd_steinberg": (16, ((0, 1, 7), (1, -1, 3), (1, 0, 5), (1, 1, 1))),
    # Atkinson spreads only 6/8 of the error, which keeps highlights and shadows clean.
    "atkinson": (8, ((0, 1, 1), (0, 2, 1), (1, -1, 1), (1, 0, 1), (1, 1, 1), (2, 0, 1))),
    "jarvis": (
        48,
        (
            (0, 1, 7), (0, 2, 5),
            (1, -2, 3), (1, -1, 5), (1, 0, 7), (1, 1, 5), (1, 2, 3),
            (2, -2, 1), (2, -1, 3), (2, 0, 5), (2, 1, 3), (2, 2, 1),
        ),
    ),
    "stucki": (
        42,
        (
            (0, 1, 8), (0, 2, 4),
            (1, -2, 2), (1, -1, 4), (1, 0, 8), (1, 1, 4), (1, 2, 2),
            (2, -2, 1), (2, -1, 2), (2, 0, 4), (2, 1, 2), (2, 2, 1),
        ),
    ),
    "sierra": (
        32,
        (
            (0, 1, 5), (0, 2, 3),
            (1, -2, 2), (1, -1, 4), (1, 0, 5), (1, 1, 4), (1, 2, 2),
            (2, -1, 2), (2, 0, 3), (2, 1, 2),
        ),
    ),
}  # fmt: skip

_BAYER2 = np.array([[0, 2], [3, 1]])


def bayer_matrix(n: int = 8) -> np.ndarray:
    """The n×n Bayer index matrix (values 0..n²-1), built by the usual recursion."""
    m = _BAYER2
    while m.shape[0] < n:
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]])
    return m


BAYER8_THRESHOLDS = ((bayer_matrix(8) + 0.5) / 64.0).astype(np.float32)


def ordered(darkness: np.ndarray, row0: int) -> np.ndarray:
    """Burn where the darkness (0..1) exceeds the Bayer threshold of its position."""
    h, w = darkness.shape
    rows = (np.arange(h) + row0) % 8
    tile = BAYER8_THRESHOLDS[rows][:, np.arange(w) % 8]
    return darkness > tile


class ErrorDiffuser:
    """Binary error diffusion over successive row bands, carrying the error between them.

    ``process`` takes a band of darkness values (0 white .. 1 black, float32) and returns the
    burn mask; errors for rows below the band are kept for the next call.
    """

    def __init__(self, kernel: str, width_px: int) -> None:
        self.divisor, self.entries = KERNELS[kernel]
        self.width = width_px
        self.reach = max(dr for dr, _, _ in self.entries)
        # Smallest skew that puts every target after its source on the wavefront.
        self.k = max(1, *(math.floor(-dc / dr) + 1 for dr, dc, _ in self.entries if dr > 0))
        self.carry = np.zeros((self.reach, width_px), dtype=np.float32)
        by_weight: dict[int, list[tuple[int, int]]] = {}
        for dr, dc, w in self.entries:
            by_weight.setdefault(w, []).append((dr, dc))
        self.by_weight = [(np.float32(w / self.divisor), t) for w, t in sorted(by_weight.items())]

    @staticmethod
    def band_rows(width_px: int, k: int, budget_bytes: int = 12 << 20) -> int:
        """Rows per band so that the skewed working array stays within ``budget_bytes``."""
        rows = 16
        while rows < 4096 and (width_px + k * (2 * rows + 2)) * (2 * rows + 2) * 4 <= budget_bytes:
            rows *= 2
        return rows

    def process(self, darkness: np.ndarray) -> np.ndarray:
        b, w = darkness.shape
        assert w == self.width
        k, reach = self.k, self.reach
        rows = b + reach
        cols = w + k * (rows - 1) + 4
        skew = np.zeros((cols, rows), dtype=np.float32)
        values = darkness.astype(np.float32, copy=True)
        values[: min(reach, b)] += self.carry[: min(reach, b)]
        rr = np.arange(b)[:, None]
        cc = np.arange(w)[None, :]
        skew[cc + k * rr + 2, rr] = values
        if b < reach:  # a band thinner than the kernel: pass the rest of the carry on
            for i in range(b, reach):
                skew[np.arange(w) + k * i + 2, i] += self.carry[i]
        out_skew = np.zeros((cols, rows), dtype=bool)
        last_t = (w - 1) + k * (b - 1)
        tmp = np.empty(b, dtype=np.float32)
        for t in range(last_t + 1):
            r_lo = max(0, -((w - 1 - t) // k))
            r_hi = min(b - 1, t // k)
            if r_lo > r_hi:
                continue
            n = r_hi - r_lo + 1
            col = skew[t + 2, r_lo : r_hi + 1]
            on = col >= 0.5
            out_skew[t + 2, r_lo : r_hi + 1] = on
            err = np.subtract(col, on, out=tmp[:n])
            for weight, targets in self.by_weight:
                share = err * weight
                for dr, dc in targets:
                    dst = skew[t + 2 + dc + k * dr, r_lo + dr : r_hi + 1 + dr]
                    dst += share
        out: np.ndarray = out_skew[cc + k * rr + 2, rr]
        # Errors that fell below the band become the carry for the next band.
        new_carry = np.zeros_like(self.carry)
        for i in range(reach):
            r = b + i
            new_carry[i] = skew[np.arange(w) + k * r + 2, r]
        self.carry = new_carry
        return out


def diffuse_reference(darkness: np.ndarray, kernel: str) -> np.ndarray:
    """Plain raster-order error diffusion, one pixel at a time: the yardstick for tests."""
    divisor, entries = KERNELS[kernel]
    h, w = darkness.shape
    work = darkness.astype(np.float64, copy=True)
    out = np.zeros((h, w), dtype=bool)
    for r in range(h):
        for c in range(w):
            v = work[r, c]
            on = v >= 0.5
            out[r, c] = on
            err = v - on
            for dr, dc, wt in entries:
                rr, cc = r + dr, c + dc
                if rr < h and 0 <= cc < w:
                    work[rr, cc] += err * wt / divisor
    return out
