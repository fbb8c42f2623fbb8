"""Power rows → raster G-code text: the writer behind :func:`laserd.imaging.raster.image_to_gcode`.

The text is built without a Python loop over runs: run ends come from ``np.diff``-style
comparisons, each run's line is gathered from precomputed byte tables (``X<coord>`` per pixel
edge, ``S<power>\\n`` per power) into a fixed-width record array whose NUL padding is then
squeezed out in one pass. Python touches only the few lines per row (travel, overscan). The
writer keeps the modal state (position, power, feed) so that no word is repeated, and the
distances and bounds for the statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from laserd.gcode.output import fmt_mm
from laserd.gcode.segments import MotionStats
from laserd.imaging.laser_settings import LaserSettings

#: S values are held as uint16.
MAX_POWER_S = 65535


@dataclass(slots=True)
class _Travel:
    """Per-row positions and distances collected for the statistics."""

    g0_mm: float = 0.0
    first: tuple[float, float] | None = None
    last: tuple[float, float] | None = None


@dataclass(slots=True)
class _Runs:
    """One chunk's engraved rows as runs of equal power, with their G-code text."""

    #: Chunk row index of each engraved (not blank) row.
    rows: np.ndarray
    #: Per engraved row: runs right to left; first and last burning pixel (scan order).
    rev: np.ndarray
    first: np.ndarray
    last: np.ndarray
    #: Per run: its power; per row: one past its last run.
    power: np.ndarray
    row_end: np.ndarray
    #: The runs' lines, and each row's slice of them.
    body: memoryview
    byte_start: np.ndarray
    byte_end: np.ndarray
    count: int
    burn_px: int
    gap_px: int


def _word_table(words: list[bytes]) -> tuple[list[np.ndarray], np.ndarray]:
    """Words as NUL-padded 8-byte columns (uint64) for fast gathers, and their lengths.

    GRBL drops NULs, but the writer removes them anyway: the padding exists only so that a
    whole run's line can be gathered with a few ``np.take`` calls on machine words.
    """
    width = -(-max(len(w) for w in words) // 8) * 8
    table = np.array(words, dtype=f"S{width}").view(np.uint64).reshape(len(words), width // 8)
    cols = [np.ascontiguousarray(table[:, k]) for k in range(width // 8)]
    lengths = np.fromiter((len(w) for w in words), dtype=np.uint8, count=len(words))
    return cols, lengths


class RasterWriter:
    """Turns chunks of S rows into G-code lines, tracking modal state and statistics."""

    def __init__(
        self,
        fh: BinaryIO,
        laser: LaserSettings,
        width_px: int,
        height_px: int,
        max_power_s: int,
        bed_x_mm: float | None = None,
    ) -> None:
        #: Overscan stops at the bed's edges: an image placed at X=0 must not send the head
        #: to negative X (a soft-limit alarm mid-job, or a crash into the frame).
        self.x_limits = (0.0, bed_x_mm) if bed_x_mm is not None else None
        if not 1 <= max_power_s <= MAX_POWER_S:
            raise ValueError(f"max_power_s must be 1..{MAX_POWER_S}, not {max_power_s}")
        self.fh = fh
        self.laser = laser
        self.w, self.h = width_px, height_px
        self.dx = laser.line_interval_mm
        self.ovs = laser.overscan_mm
        ox = laser.origin_mm.x
        self.oy = laser.origin_mm.y
        self.xb = ox + np.arange(width_px + 1, dtype=np.float64) * self.dx
        # X word per scan position: forward rows end a run at the pixel's right edge (j + 1),
        # reversed rows at its left edge (W - 1 - j); the second half of the table serves them.
        xtext = [b"X" + fmt_mm(v).encode() for v in self.xb]
        xtext = xtext[1:] + xtext[:-1][::-1]
        stext = [b"S%d\n" % s for s in range(max_power_s + 1)] + [b"\n"]
        self.no_s = max_power_s + 1
        self.xcols, self.xlen = _word_table(xtext)
        self.scols, self.slen = _word_table(stext)
        self.feed = fmt_mm(laser.speed_mm_min, 1).encode()
        self.stats = MotionStats(rapid_mm_min=laser.travel_mm_min)
        self.travel = _Travel()
        self.rows_engraved = 0
        self.burn_px = 0
        self.gap_px = 0
        self.reset_state()

    def reset_state(self) -> None:
        """Modal state unknown: the body written next states every word it relies on, so a
        pass can be repeated byte for byte whatever the previous one left behind."""
        self.cur_x: bytes | None = None
        self.cur_y: bytes | None = None
        self.s_state = -1
        self.feed_set = False

    def header(self) -> bytes:
        lines = [b"G21G90"]
        if self.laser.air_assist:
            lines.append(b"M8")
        # No S here: the first run-in (or burn) of every pass writes its S explicitly, so each
        # pass is self-contained and can be repeated byte for byte.
        lines.append(self.laser.mode.value.encode())
        return b"\n".join(lines) + b"\n"

    def trailer(self) -> bytes:
        lines = [b"M5"]
        if self.laser.air_assist:
            lines.append(b"M9")
        return b"\n".join(lines) + b"\n"

    def write_rows(self, r0: int, s: np.ndarray) -> int:
        """Write the G-code of rows ``r0 ..``; return the number of lines written."""
        runs = self._runs(s)
        if runs is None:
            return 0
        self.burn_px += runs.burn_px
        self.gap_px += runs.gap_px
        parts: list[bytes | memoryview] = []
        lines = runs.count
        xb, ovs, dx, w = self.xb, self.ovs, self.dx, self.w
        first, last, rev, power, row_end = runs.first, runs.last, runs.rev, runs.power, runs.row_end
        body, byte_start, byte_end = runs.body, runs.byte_start, runs.byte_end
        ys = self.oy + (self.h - 1 - (r0 + runs.rows)) * dx
        for i in range(runs.rows.size):
            if rev[i]:
                start_b, end_b, sign = w - first[i], w - 1 - last[i], -1.0
            else:
                start_b, end_b, sign = first[i], last[i] + 1, 1.0
            x_start = float(xb[start_b])
            x_end = float(xb[end_b])
            x_in = x_start - sign * ovs
            x_out = x_end + sign * ovs
            if self.x_limits is not None and ovs > 0:
                x_in, x_out = _clip_overscan(x_in, x_start, x_out, x_end, self.x_limits)
            y = float(ys[i])
            lines += self._row_head(parts, x_in, x_start, y)
            parts.append(body[byte_start[i] : byte_end[i]])
            if ovs > 0:
                parts.append(b"X" + fmt_mm(x_out).encode() + b"S0\n")
                lines += 1
                self.s_state = 0
            else:
                self.s_state = int(power[row_end[i] - 1])
            self.cur_x = fmt_mm(x_out).encode()
            self.travel.last = (x_out, y)
            self._extend_stats(x_in, x_start, x_end, x_out, y)
        self.rows_engraved += runs.rows.size
        self.fh.write(b"".join(parts))
        return lines

    def _runs(self, s: np.ndarray) -> _Runs | None:
        """The runs of a chunk's rows that burn anything, as G-code text (None: all blank).

        Vectorised over the whole chunk: no Python loop per run or per pixel.
        """
        w = self.w
        idx = np.flatnonzero((s != 0).any(axis=1))
        if idx.size == 0:
            return None
        sv = s[idx]
        order = self.rows_engraved + np.arange(idx.size)
        rev = (order % 2 == 1) if self.laser.bidirectional else np.zeros(idx.size, dtype=bool)
        if rev.any():
            sv[rev] = sv[rev, ::-1]
        nzv = sv != 0
        first = nzv.argmax(axis=1)
        last = w - 1 - nzv[:, ::-1].argmax(axis=1)
        ends = np.empty(sv.shape, dtype=bool)
        np.not_equal(sv[:, :-1], sv[:, 1:], out=ends[:, :-1])
        ends[:, -1] = nzv[:, -1]
        lead = np.flatnonzero(first > 0)
        ends[lead, first[lead] - 1] = False
        flat = np.flatnonzero(ends)
        counts = ends.sum(axis=1)
        row_end = np.cumsum(counts)
        row_start = row_end - counts
        power = sv.reshape(-1)[flat]
        # Table index of each run's X word: its scan position j, plus W on reversed rows.
        tidx = flat - np.repeat(np.arange(idx.size) * w - rev * w, counts)
        s_idx = power.astype(np.int64)
        if self.ovs <= 0:
            # Without a run-in the first run follows the previous row's last power.
            prev = np.empty(idx.size, dtype=np.int64)
            prev[0] = self.s_state
            prev[1:] = s_idx[row_end[:-1] - 1]
            same = s_idx[row_start] == prev
            s_idx[row_start[same]] = self.no_s
        body, run_bytes = self._gather(tidx, s_idx)
        byte_end = np.cumsum(np.add.reduceat(run_bytes, row_start, dtype=np.int64))
        burn = int(np.count_nonzero(nzv))
        return _Runs(
            rows=idx,
            rev=rev,
            first=first,
            last=last,
            power=power,
            row_end=row_end,
            body=body,
            byte_start=np.concatenate(([0], byte_end[:-1])),
            byte_end=byte_end,
            count=flat.size,
            burn_px=burn,
            gap_px=int((last - first + 1).sum()) - burn,
        )

    def _gather(self, tidx: np.ndarray, s_idx: np.ndarray) -> tuple[memoryview, np.ndarray]:
        """Every run's ``X<x>S<s>`` line, gathered from the word tables in one pass, and the
        byte length of each."""
        nx = len(self.xcols)
        rec = np.empty((tidx.size, nx + len(self.scols)), dtype=np.uint64)
        for k, col in enumerate(self.xcols):
            np.take(col, tidx, out=rec[:, k])
        for k, col in enumerate(self.scols):
            np.take(col, s_idx, out=rec[:, nx + k])
        body = memoryview(rec.tobytes().translate(None, b"\0"))
        return body, self.xlen[tidx] + self.slen[s_idx]

    def _extend_stats(
        self, x_in: float, x_start: float, x_end: float, x_out: float, y: float
    ) -> None:
        """Bounds and burnt length of one engraved row (run-in and run-out count as bounds)."""
        st = self.stats
        st.extend_laser(min(x_start, x_end), max(x_start, x_end), y, y)
        st.xmin = min(st.xmin, x_in, x_out)
        st.xmax = max(st.xmax, x_in, x_out)
        st.ymin = min(st.ymin, y)
        st.ymax = max(st.ymax, y)

    def _row_head(
        self, parts: list[bytes | memoryview], x_in: float, x_start: float, y: float
    ) -> int:
        """Travel to the row (G0) and, with overscan, the laser-off run-in; return line count."""
        lines = 0
        tx = fmt_mm(x_in).encode()
        ty = fmt_mm(y).encode()
        words = b""
        if tx != self.cur_x:
            words += b"X" + tx
        if ty != self.cur_y:
            words += b"Y" + ty
        if self.travel.last is None:
            self.travel.first = (x_in, y)
        else:
            lx, ly = self.travel.last
            self.travel.g0_mm += math.hypot(x_in - lx, y - ly)
        if words:
            parts.append(b"G0" + words + b"\n")
            lines += 1
        self.cur_x, self.cur_y = tx, ty
        feed = b"" if self.feed_set else b"F" + self.feed
        self.feed_set = True
        if self.ovs > 0:
            s0 = b"S0" if self.s_state != 0 else b""
            parts.append(b"G1X" + fmt_mm(x_start).encode() + s0 + feed + b"\n")
            self.s_state = 0
            lines += 1
        else:
            parts.append(b"G1" + feed)  # prefixes the first run's line
        return lines


def _clip_overscan(
    x_in: float, x_start: float, x_out: float, x_end: float, limits: tuple[float, float]
) -> tuple[float, float]:
    """Keep the laser-off run-in and run-out on the bed (never past the engraved span)."""
    lo, hi = limits

    def clip(x: float, anchor: float) -> float:
        return min(max(x, min(lo, anchor)), max(hi, anchor))

    return clip(x_in, x_start), clip(x_out, x_end)
