"""A model of GRBL 1.1's motion planner and serial link: how long a program really takes.

Distance over feed is wrong in both directions on a laser: short segments never reach their
feed because GRBL only looks 15 blocks ahead and must always be able to stop at the end of
the last one; corners are taken at the junction-deviation speed; every ``M3``/``M4``/``M5``
change empties the planner; a run of very short lines is paced by the 115200-baud link, not by
the motors. This module replays a program the way the firmware plans it, from the ``$``
settings of the controller (:class:`PlannerSettings`), and returns the time of the whole job
and the time at which each line is acknowledged (what a job's ETA needs).

The model, following GRBL 1.1's ``planner.c``, ``motion_control.c`` and ``stepper.c``:

* Each move becomes a block whose length comes from the step-rounded targets (``$100``-
  ``$102``); zero-step moves are dropped, as the firmware does. A block's acceleration and
  rapid rate are the per-axis limits (``$120``-``$122``, ``$110``-``$112``) projected onto
  its direction: the largest value for which no axis exceeds its own limit. So a diagonal
  G0 is faster than ``$110`` along its path, and a move with a slow Z is slow.
* A block's entry speed is limited by the junction with the previous block (``$11``, the
  firmware's centripetal formula with its straight-line and reversal cases), by both blocks'
  nominal speeds, and is zero when the planner was empty when the block arrived.
* When block *b* is being prepared for the steppers, the planner holds *b* and at most the 14
  blocks after it (16 slots, one always free): its exit speed is the backward pass over that
  window, ending at a stop, combined with the forward pass from its actual entry speed. The
  backward pass over a sliding window is a range minimum of ``limit_c + S_(c-1)`` where ``S``
  is the running sum of ``2·a·L`` (speeds squared); the forward pass is a min-plus recurrence
  solved with :func:`numpy.minimum.accumulate`. Each block then runs the trapezoid or triangle
  profile between its entry and exit speeds.
* Arcs are cut into the chords ``mc_arc`` would make (``$12``), by the G-code reader.
* ``M3``/``M4``/``M5`` and coolant changes, ``G4`` and program end wait until the planner is
  empty (``protocol_buffer_synchronize``); with ``$32=0`` an ``S`` change while the laser is on
  does too. In laser mode S-only changes do not.
* The link: lines leave the sender under character counting (at most ``rx_buffer`` bytes
  unacknowledged, GRBL's 128-byte receive buffer), travel at ``baud/10`` bytes per second, and
  are acknowledged when their blocks fit in the planner. A block can only be planned once it
  has arrived, so when lines arrive slower than the head moves through them, the window shrinks
  and the planner slows down or runs dry. This coupling is solved by a few passes of
  vectorised max-plus recurrences.

Not modelled: the ATmega328p's own time to parse and plan a line (a few hundred lines per
second at most on the real chip; the ground truth was measured on the firmware compiled for a
PC), feed/rapid overrides, and homing (``$H`` takes as long as the machine needs to find its
switches).

The computation is streamed: :class:`Estimator` takes moves and lines in batches and keeps
only the last few blocks and lines it still needs, so memory stays constant for any file size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from laserd.planner_settings import PlannerSettings, elapsed_at

__all__ = ["Estimate", "Estimator", "Moves", "PlannerSettings", "elapsed_at"]

#: GRBL's MINIMUM_FEED_RATE (mm/min), as mm/s.
MIN_SPEED_MM_S = 1.0 / 60.0
#: GRBL's SOME_LARGE_VALUE for straight junctions (speed squared).
_LARGE = 1.0e38
#: Passes of the link/planner coupling; the first is motion-only, later ones refine.
_LINK_PASSES = 4
#: Blocks solved at once before the oldest are finalised (bounds memory and numpy call cost).
_SOLVE_BLOCKS = 1 << 14
#: How far ahead of the steppers GRBL prepares motion: its segment buffer (6 segments, one
#: slot free) of DT_SEGMENT = 10 ms each.
PREP_LEAD_S = 0.04
#: A job ends when a status report says Idle; reports are polled (the ground truth at 10 Hz,
#: laserd at least as often), so the end is seen on average half a period late.
END_LATENCY_S = 0.05
#: One checkpoint (line, acknowledged time) every this many lines for the ETA table, at
#: first; the stride doubles whenever the table reaches MAX_CHECKPOINTS entries, so it stays
#: small (it is stored with the file's stats) for any length.
CHECKPOINT_LINES = 64
MAX_CHECKPOINTS = 512


@dataclass(slots=True)
class Moves:
    """A batch of straight moves in the order GRBL receives them (arcs already cut).

    ``line`` is the 0-based index of the streamed line each move belongs to, counted from
    the start of the batch's lines (see :meth:`Estimator.add`).
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    rapid: np.ndarray
    feed_mm_min: np.ndarray
    line: np.ndarray
    #: Whether ``M3`` (constant power) is on at each move: in laser mode GRBL empties its
    #: planner at a move of no whole step under M3 (``mc_line``'s spindle sync).
    m3: np.ndarray | None = None

    @classmethod
    def empty(cls) -> Moves:
        f = np.zeros(0, dtype=np.float64)
        return cls(f, f, f, np.zeros(0, dtype=bool), f, np.zeros(0, dtype=np.int64))


@dataclass(slots=True)
class Estimate:
    """The result: total seconds and a checkpoint table ``(line, seconds when acknowledged)``."""

    total_s: float
    lines: int
    blocks: int
    settings: PlannerSettings
    checkpoints: list[tuple[int, float]]
    link_bound_s: float  # the time the link alone needs for all lines

    def remaining_s(self, lines_acked: int) -> float:
        """Model time left once ``lines_acked`` lines have been acknowledged."""
        return max(0.0, self.total_s - self.elapsed_at(lines_acked))

    def elapsed_at(self, lines_acked: int) -> float:
        """Model time at which the ``lines_acked``-th line was acknowledged (interpolated)."""
        return elapsed_at(self.checkpoints, lines_acked, self.lines, self.total_s)


def _lround(v: np.ndarray) -> np.ndarray:
    """C's lround: halves away from zero."""
    rounded: np.ndarray = np.trunc(v + np.copysign(0.5, v)).astype(np.int64)
    return rounded


def _limit_by_axes(limits: np.ndarray, unit: list[np.ndarray | None]) -> np.ndarray:
    """GRBL's limit_value_by_axis_maximum: the largest value no axis exceeds, per block.

    ``unit`` holds one array of direction components per axis (``None``: the axis never
    moves in this batch). A zero component divides to +inf, which never limits."""
    out: np.ndarray | None = None
    with np.errstate(divide="ignore"):
        for lim, comp in zip(limits, unit, strict=True):
            if comp is None:
                continue
            v = lim / np.abs(comp)
            out = v if out is None else np.minimum(out, v, out=out)
    assert out is not None
    return out


def _block_time(vi2: np.ndarray, vo2: np.ndarray, vn: np.ndarray, a: np.ndarray,
                length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Seconds of each block's trapezoid (or triangle) from entry²/exit² speeds, and the
    seconds of its final deceleration. (Triangles, the blocks too short to reach their
    speed, are few: their peak speed is worked out for them alone.)"""
    vn2 = vn * vn
    vi2 = np.clip(vi2, 0.0, vn2)
    vo2 = np.clip(vo2, 0.0, vn2)
    vi = np.sqrt(vi2)
    vo = np.sqrt(vo2)
    two_a = 2 * a
    d_acc = (vn2 - vi2) / two_a
    d_dec = (vn2 - vo2) / two_a
    cruise = length - d_acc - d_dec
    tri = np.flatnonzero(~(cruise >= 0))
    peak = vn.copy()
    if tri.size:
        top = np.sqrt(np.maximum((two_a[tri] * length[tri] + vi2[tri] + vo2[tri]) * 0.5, 0.0))
        peak[tri] = np.maximum(top, np.maximum(vi[tri], vo[tri]))
    t_dec = (peak - vo) / a
    t = (peak - vi) / a + t_dec
    cruise_s = cruise / vn
    cruise_s[tri] = 0.0
    return t + cruise_s, t_dec


def _arrived_in_window(
    push: np.ndarray, when: np.ndarray, width: int, rows: np.ndarray | None = None
) -> np.ndarray:
    """Per block b, the last block c in b … b+width with ``push[c] <= when[b]`` (b if none).

    ``push`` is non-decreasing, so this is a binary search; done over the window only (four
    halvings for GRBL's 15 blocks, whole-array steps) it is cheaper than ``searchsorted`` over
    every block, and gives the same as ``clip(searchsorted(push, when, "right") - 1, b,
    b + width)``. With ``rows`` only those blocks are searched (``when`` given for them).
    """
    n = push.shape[0]
    step = 1 << max(width.bit_length() - 1, 0)
    padded = np.empty(n + 2 * step)  # the steps add up to 2 * step - 1
    padded[:n] = push
    padded[n:] = np.inf
    pos = np.arange(n) if rows is None else rows.copy()
    limit = pos + width
    while step:
        cand = pos + step
        ok = padded[cand] <= when
        ok &= cand <= limit
        pos += step * ok
        step >>= 1
    return pos


def _windows(push: np.ndarray, when: np.ndarray, e_static: np.ndarray, width: int) -> np.ndarray:
    """Per block b, the last block of its window that had arrived by ``when[b]``, at most
    ``e_static[b]`` (``min(_arrived_in_window(...), e_static)``).

    While the link keeps ahead of the motors (most jobs, nearly every block), the last block
    a window may hold had arrived already, and then so had every block before it (``push``
    is non-decreasing): one comparison settles that block, and only the others are searched.
    """
    late = push[e_static] > when
    if not late.any():
        return e_static
    rows = np.flatnonzero(late)
    e = e_static.copy()
    e[rows] = np.minimum(_arrived_in_window(push, when[rows], width, rows), e_static[rows])
    return e


def _running(op: np.ufunc, v: np.ndarray, start: float) -> np.ndarray:
    """``op.accumulate`` of ``[start, *v]`` without its first element, in place in ``v``
    (a running maximum or minimum carried in from the previous batch)."""
    op.accumulate(v, out=v)
    op(v, start, out=v)
    return v


class _RangeMin:
    """Minimum of ``g`` over index ranges of at most ``width`` (a sparse table, built once)."""

    def __init__(self, g: np.ndarray, width: int) -> None:
        n = g.shape[0]
        levels = [g]
        span = 1
        while span * 2 <= min(width, n):
            prev = levels[-1]
            nxt = prev.copy()
            np.minimum(prev[: n - span], prev[span:], out=nxt[: n - span])
            levels.append(nxt)
            span *= 2
        self._table = np.stack(levels).ravel()
        self._n = n
        self._width = width
        self._top = levels[-1]  # the widest level: min of g[i .. i + span - 1]
        self._top_span = span
        # floor(log2(length)) for lengths 0 .. 2**levels - 1 (0 and 1 give level 0), as the
        # offset of that level in the flat table, and the level's span.
        k = np.floor(np.log2(np.maximum(np.arange(2 * span), 1))).astype(np.int64)
        k = np.minimum(k, len(levels) - 1)
        self._offset = k * n
        self._span = np.left_shift(1, k)

    def query(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """min(g[lo..hi]) per row, inclusive; +inf where the range is empty."""
        n = self._n
        length = hi - lo + 1
        ok = length > 0
        idx = np.clip(length, 0, self._offset.shape[0] - 1)
        off = self._offset[idx]
        lo_c = np.minimum(lo, n - 1)
        hi2 = np.clip(hi - self._span[idx] + 1, 0, n - 1)
        res: np.ndarray = np.minimum(self._table[off + lo_c], self._table[off + hi2])
        res[~ok] = np.inf
        return res

    def after(self, e: np.ndarray, full_end: np.ndarray) -> np.ndarray:
        """min(g[b+1 .. e[b]]) for every b (+inf where empty); ``full_end`` is ``b + width``.

        Nearly every window is full (``e[b] == b + width``): for those the answer is two
        slices of the widest level, the same two values :meth:`query` would pick; the others
        (before a sync, at the batch's end, while the link lags) go through :meth:`query`.
        """
        n, w, span = self._n, self._width, self._top_span
        full = n - w  # rows that can have a full window
        if full <= 0:
            rows = np.arange(n)
            return self.query(rows + 1, e)
        out = np.empty(n)
        top = self._top
        np.minimum(top[1 : full + 1], top[w - span + 1 : full + w - span + 1], out=out[:full])
        odd = np.flatnonzero(e[:full] != full_end[:full])
        rows = np.concatenate((odd, np.arange(full, n)))
        out[rows] = self.query(rows + 1, e[rows])
        return out


@dataclass
class Estimator:
    """Feed batches with :meth:`add`, then :meth:`finish`. Constant memory for any length."""

    settings: PlannerSettings = field(default_factory=PlannerSettings)
    checkpoint_lines: int = CHECKPOINT_LINES

    def __post_init__(self) -> None:
        s = self.settings
        self._spm = np.asarray(s.steps_per_mm, dtype=np.float64)
        self._accel = np.asarray(s.accel_mm_s2, dtype=np.float64)
        self._rate = np.asarray(s.max_rate_mm_min, dtype=np.float64) / 60.0
        # Block building state (GRBL's pl struct).
        self._pos_steps = np.zeros(3, dtype=np.int64)
        self._prev_unit = np.zeros(3, dtype=np.float64)
        self._prev_nominal = 0.0
        self._planner_empty = True  # the next block starts from rest
        # Pending (not yet finalised) lines and blocks.
        self._line_bytes: list[np.ndarray] = []
        self._line_sync: list[np.ndarray] = []
        self._line_dwell: list[np.ndarray] = []
        self._blk: list[dict[str, np.ndarray]] = []
        self._n_lines = 0  # lines ever added
        self._n_pending_lines = 0
        self._n_pending_blocks = 0
        self._first_line = 0  # global index of the first pending line
        self._first_block = 0
        # Carried results of finalised lines/blocks.
        self._v0_sq = 0.0  # exit speed² of the last finalised block
        self._hist_f = np.zeros(0)  # finish times of the last finalised blocks
        self._hist_p = np.zeros(0)  # ack times of the last finalised lines
        self._hist_cum = np.zeros(0)  # cumulative bytes after those lines
        self._cum_bytes = 0.0  # cumulative bytes after the last finalised line
        self._last_a = 0.0  # arrival of the last finalised line
        self._last_p = 0.0
        self._last_f = 0.0
        self._total_bytes = 0.0
        self.checkpoints: list[tuple[int, float]] = []
        self._next_checkpoint = self.checkpoint_lines

    # ---------------------------------------------------------------- input
    def add(
        self,
        moves: Moves,
        line_bytes: np.ndarray,
        sync_lines: np.ndarray | None = None,
        dwell_s: np.ndarray | None = None,
        s_change_lines: np.ndarray | None = None,
    ) -> None:
        """Add ``len(line_bytes)`` streamed lines (bytes including the newline) and the moves
        they make. ``sync_lines`` (indices within the batch) wait for the planner to empty
        before they are processed (spindle/coolant changes, G4, program end), each with its
        ``dwell_s``; ``s_change_lines`` are lines that change S while the laser is on (they
        also wait when laser mode is off)."""
        n = int(line_bytes.shape[0])
        if n == 0:
            return
        sync = np.zeros(n, dtype=bool)
        dwell = np.zeros(n, dtype=np.float64)
        if sync_lines is not None and sync_lines.size:
            sync[sync_lines] = True
            if dwell_s is not None:
                np.add.at(dwell, sync_lines, dwell_s)
        if not self.settings.laser_mode and s_change_lines is not None and s_change_lines.size:
            sync[s_change_lines] = True
        self._total_bytes += float(line_bytes.sum())
        blocks = self._make_blocks(moves, sync, self._n_pending_lines)
        self._line_bytes.append(line_bytes.astype(np.float64))
        self._line_sync.append(sync)
        self._line_dwell.append(dwell)
        self._n_lines += n
        self._n_pending_lines += n
        if blocks is not None:
            self._blk.append(blocks)
            self._n_pending_blocks += int(blocks["len"].shape[0])
        if self._n_pending_blocks >= _SOLVE_BLOCKS or self._n_pending_lines >= 4 * _SOLVE_BLOCKS:
            self._solve(final=False)

    def _make_blocks(
        self, moves: Moves, sync: np.ndarray, line_offset: int
    ) -> dict[str, np.ndarray] | None:
        m = int(moves.x.shape[0])
        # Lines that empty the planner make the next block start from rest.
        sync_idx = np.flatnonzero(sync)
        if m == 0:
            if sync_idx.size:
                self._planner_empty = True
            return None
        # Step-rounded targets per axis (GRBL plans from steps); axes that never move in this
        # batch (Z, on most laser jobs) are left out of the arithmetic.
        dsteps: list[np.ndarray | None] = []
        for axis, coord in enumerate((moves.x, moves.y, moves.z)):
            first = int(self._pos_steps[axis])
            if (coord == coord[0]).all():  # one target (Z, on most laser jobs): round it once
                target = int(_lround(coord[:1] * self._spm[axis])[0])
                self._pos_steps[axis] = target
                if target == first:
                    dsteps.append(None)
                else:
                    once = np.zeros(m, dtype=np.int64)
                    once[0] = target - first
                    dsteps.append(once)
                continue
            steps = _lround(coord * self._spm[axis])
            self._pos_steps[axis] = int(steps[-1])
            if first == steps[0] and (steps.size == 1 or (steps[1:] == steps[0]).all()):
                dsteps.append(None)
                continue
            dsteps.append(np.diff(steps, prepend=first))
        moving = [ds for ds in dsteps if ds is not None]
        real = np.zeros(m, dtype=bool)
        for ds in moving:
            real |= ds != 0
        line = moves.line.astype(np.int64)
        if self.settings.laser_mode and moves.m3 is not None:
            zero_m3 = moves.m3 & ~real
            if zero_m3.any():
                sync[line[zero_m3]] = True
                sync_idx = np.flatnonzero(sync)
        # A sync line between the previous real block and this one: starts from rest.
        after_sync = np.zeros(m, dtype=bool)
        if sync_idx.size:
            # number of sync lines strictly before each move's line (a sync line's own
            # moves come after its wait)
            before = np.searchsorted(sync_idx, line, side="right")
            # a move on a sync line itself also waits
            after_sync = np.diff(np.concatenate(([0], before))) > 0
            last_sync_line = int(sync_idx[-1])
        else:
            last_sync_line = -1
        if not real.any():
            if sync_idx.size:
                self._planner_empty = True
            return None
        # Carry "starts from rest" through dropped zero-length moves to the next real block.
        rest_flag = after_sync.copy()
        if self._planner_empty:
            rest_flag[0] = True
        ri_idx = np.flatnonzero(real)
        # (every move makes a block, as nearly always: no gathers)
        ri: np.ndarray | slice = slice(None) if ri_idx.size == m else ri_idx
        if isinstance(ri, slice):
            acc = rest_flag
        else:
            # A dropped move's flag goes to the next real block.
            nxt_real = np.cumsum(real) - real  # real blocks before each move
            has_next = nxt_real < ri_idx.size
            acc = np.zeros(ri_idx.size, dtype=bool)
            acc[nxt_real[rest_flag & has_next]] = True
        n_blocks = ri_idx.size
        d: list[np.ndarray | None] = [
            None if ds is None else ds[ri] / self._spm[axis] for axis, ds in enumerate(dsteps)
        ]
        length = np.sqrt(sum(c * c for c in d if c is not None))
        unit = [None if c is None else c / length for c in d]
        accel = _limit_by_axes(self._accel, unit)
        rapid_rate = _limit_by_axes(self._rate, unit)
        feed = moves.feed_mm_min[ri] / 60.0
        rapid = moves.rapid[ri]
        nominal = np.where(rapid, rapid_rate, np.minimum(feed, rapid_rate))
        nominal = np.maximum(nominal, MIN_SPEED_MM_S)
        # Junctions: the previous block's direction (carried across batches).
        cos_t = np.zeros(n_blocks)
        jvec: list[np.ndarray | None] = []
        last_unit: list[float] = []
        for axis, comp in enumerate(unit):
            carried = float(self._prev_unit[axis])
            if comp is None:
                prev_c = np.zeros(n_blocks)
                prev_c[0] = carried
                jvec.append(-prev_c if carried else None)
                last_unit.append(0.0)
                continue
            prev_c = np.empty_like(comp)
            prev_c[0] = carried
            prev_c[1:] = comp[:-1]
            cos_t -= prev_c * comp
            jvec.append(comp - prev_c)
            last_unit.append(float(comp[-1]))
        jlen = np.sqrt(sum(c * c for c in jvec if c is not None))
        jlen = np.where(jlen > 0, jlen, 1.0)
        jacc = _limit_by_axes(self._accel, [None if c is None else c / jlen for c in jvec])
        sin_d2 = np.sqrt(np.clip(0.5 * (1.0 - cos_t), 0.0, 1.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            vj2 = jacc * self.settings.junction_deviation_mm * sin_d2 / (1.0 - sin_d2)
        vj2 = np.where(cos_t > 0.999999, 0.0, np.where(cos_t < -0.999999, _LARGE, vj2))
        vj2[acc] = 0.0
        prev_nom = np.concatenate(([self._prev_nominal], nominal[:-1]))
        max_entry = np.minimum(np.minimum(nominal, prev_nom) ** 2, vj2)
        self._prev_unit = np.asarray(last_unit)
        self._prev_nominal = float(nominal[-1])
        self._planner_empty = bool(last_sync_line > int(line[ri_idx[-1]]))
        return {
            "len": length,
            "a": accel,
            "vn": nominal,
            "m": max_entry,
            "line": line[ri] + line_offset,
        }

    # ---------------------------------------------------------------- solve
    def _solve(self, final: bool) -> None:
        s = self.settings
        if self._n_pending_lines == 0:
            return
        lb = np.concatenate(self._line_bytes)
        lsync = np.concatenate(self._line_sync)
        ldwell = np.concatenate(self._line_dwell)
        nl = lb.shape[0]
        if self._blk:
            blk = {k: np.concatenate([b[k] for b in self._blk]) for k in self._blk[0]}
        else:
            blk = {k: np.zeros(0) for k in ("len", "a", "vn", "m")}
            blk["line"] = np.zeros(0, dtype=np.int64)
        nb = blk["len"].shape[0]
        rate = s.bytes_per_s
        W = s.planner_blocks - 1  # blocks after b in the window

        # Static per-line data.
        cum = self._cum_bytes + np.cumsum(lb)  # cumulative bytes after each line
        c = lb / rate
        C = np.cumsum(c)
        # Dwells (G4) are rare: without them their sums are zeros and the terms are left out.
        has_dwell = bool(ldwell.any())
        D = np.cumsum(ldwell) if has_dwell else None
        hist_cum = self._hist_cum
        all_cum = np.concatenate((hist_cum, cum))
        nh = hist_cum.shape[0]
        # q(m): the last line that must be acknowledged before line m may be sent.
        q = np.searchsorted(all_cum, cum - s.rx_buffer_bytes + 1e-9, side="left") - 1 - nh
        # Static per-block data.
        bline = blk["line"]
        # G4 dwells between a block and the one before it (the planner is empty then).
        gap: np.ndarray | None = None
        if D is not None:
            d_at = D[bline]
            gap = d_at - np.concatenate(([0.0], d_at[:-1]))
        length, a, vn, mx = blk["len"], blk["a"], blk["vn"], blk["m"]
        w = 2 * a * length
        S = np.cumsum(w)
        S_prev = np.concatenate(([0.0], S[:-1]))
        G = mx + S_prev
        # A window ends before the first block of the next sync line after b's own line
        # (a sync line's own moves come after its wait).
        sync_idx = np.flatnonzero(lsync)
        blocks_idx = np.arange(nb)
        if sync_idx.size:
            k = np.searchsorted(sync_idx, bline, side="right")
            next_sync = np.where(k < sync_idx.size, sync_idx[np.minimum(k, sync_idx.size - 1)], nl)
            sync_end = np.searchsorted(bline, next_sync, side="left") - 1
        else:
            sync_end = np.full(nb, nb - 1, dtype=np.int64)
        full_end = blocks_idx + W
        e_static = np.minimum(np.minimum(full_end, sync_end), nb - 1)
        # last block of each line (or -1)
        last_blk = np.full(nl, -1, dtype=np.int64)
        if nb:
            last_blk[bline] = np.arange(nb)
        hist_f = self._hist_f
        nhf = hist_f.shape[0]
        hist_p = self._hist_p
        nhp = hist_p.shape[0]

        push = np.zeros(nb)
        P = np.zeros(nl)
        # (the first pass sets these before reading them)
        decide, t_dec, u, F, d = (np.empty(nb) for _ in range(5))
        A = np.empty(nl)
        Q = Q_start = d  # running sums of block times (and dwells), from the block solve
        rmq = _RangeMin(G, W) if nb else None
        # Index tables of the passes, fixed for this batch. ``all_p``/``all_f`` hold a 0 (for
        # "nothing to wait for"), the kept history, then this batch's values.
        all_p = np.zeros(nhp + 1 + nl)
        all_p[1 : nhp + 1] = hist_p
        q_idx = np.maximum(q + nhp + 1, 0)  # 0: no acknowledgement to wait for
        all_f = np.zeros(nhf + 1 + nb)
        all_f[1 : nhf + 1] = hist_f
        slot_idx = np.where(last_blk >= 0, np.maximum(last_blk - s.planner_blocks + nhf + 1, 0), 0)
        bslot_idx = np.maximum(blocks_idx - s.planner_blocks + nhf + 1, 0)
        # a sync line waits for the last block before it (or the last finalised one)
        sync_wait_idx = np.searchsorted(bline, sync_idx, side="left") + nhf
        Cp = C - c
        Dp = None if D is None else D - ldwell
        prev_e: np.ndarray | None = None
        p_changed = True
        pp_idx = bline + nhp  # in all_p: the line before each block's line
        for it in range(_LINK_PASSES):
            # Windows: blocks that had arrived when b started. (A block pushed the moment the
            # previous one's slot frees is there: a tolerance keeps float rounding from
            # deciding the tie.)
            e = e_static if it == 0 else _windows(push, decide + 1e-7, e_static, W)
            same_windows = prev_e is not None and np.array_equal(e, prev_e)
            if same_windows and not p_changed:
                break  # neither the windows nor the link times change: converged
            prev_e = e
            if rmq is not None and not same_windows:
                rm = rmq.after(e, full_end)
                stop = S[e]
                bw = np.minimum(rm, stop) - S
                bw = np.where(e == blocks_idx, 0.0, bw)
                u = _running(np.minimum, bw - S, self._v0_sq)
                u += S
                vi2 = np.empty(nb)
                vi2[0] = self._v0_sq
                vi2[1:] = u[:-1]
                d, t_dec = _block_time(vi2, u, vn, a, length)
                Q = np.cumsum(d if gap is None else gap + d)
                Q_start = Q - d
            # Block times: F_b = max(F_(b-1) + dwells before b, push_b) + d_b, a max-plus
            # recurrence (the dwells are exact here; pushes move with the link times, so this
            # is redone on every pass). On the first pass nothing has been pushed yet.
            if it == 0:
                F = Q + self._last_f
            else:
                F = _running(np.maximum, push - Q_start, self._last_f)
                F += Q
            T = F - d
            # When b's exit speed is settled: its deceleration is prepared for the steppers
            # a little before it starts; a block that arrives before then still counts.
            prev_decide = decide
            decide = F - t_dec
            decide -= PREP_LEAD_S
            np.maximum(T, decide, out=decide)
            # Lines: arrival A (link), acknowledgement P.
            Sq = all_p[q_idx]
            Sq -= Cp
            A = _running(np.maximum, Sq, self._last_a)
            A += C
            # Planner slot for the line's last block, sync waits (sync lines only).
            all_f[nhf + 1 :] = F
            Xl = np.maximum(A, all_f[slot_idx])
            if sync_idx.size:
                Xl[sync_idx] = np.maximum(Xl[sync_idx], all_f[sync_wait_idx])
            if D is not None and Dp is not None:
                Xl -= Dp
            P_new = _running(np.maximum, Xl, self._last_p)
            if D is not None:
                P_new += D
            p_changed = P.shape != P_new.shape or float(np.abs(P_new - P).max(initial=0.0)) > 1e-9
            P = P_new
            all_p[nhp + 1 :] = P
            # Push time of each block: its line's arrival, the previous line's ack, a slot.
            if nb:
                prev_push = push
                push = np.maximum(A[bline], all_p[pp_idx])
                np.maximum(push, all_f[bslot_idx], out=push)
                # The next pass would find the same windows (they follow from push and
                # decide) and the same link times: it would stop here. (It always does when
                # the link keeps ahead of the motors.)
                if (
                    same_windows
                    and not p_changed
                    and np.array_equal(push, prev_push)
                    and np.array_equal(decide, prev_decide)
                ):
                    break

        # How much is final: everything when final, else lines whose blocks have full windows.
        if final or nb == 0:
            cut_line, cut_blk = nl, nb
        elif nb <= W + 1:
            cut_line, cut_blk = int(bline[0]), 0
        else:
            cut_line = int(bline[nb - (W + 1)])
            cut_blk = int(np.searchsorted(bline, cut_line, side="left"))
        if cut_line == 0:
            return
        self._record(P[:cut_line])
        self._last_p = float(P[cut_line - 1])
        self._last_a = float(A[cut_line - 1])
        self._cum_bytes = float(cum[cut_line - 1])
        keep = 2 * s.rx_buffer_bytes
        self._hist_p = np.concatenate((self._hist_p, P[:cut_line]))[-keep:]
        self._hist_cum = np.concatenate((self._hist_cum, cum[:cut_line]))[-keep:]
        if cut_blk:
            self._last_f = float(F[cut_blk - 1])
            self._v0_sq = float(u[cut_blk - 1])
            self._hist_f = np.concatenate((self._hist_f, F[:cut_blk]))[-(W + 2) :]
        self._first_line += cut_line
        self._first_block += cut_blk
        # Keep the rest pending, re-based.
        self._line_bytes = [lb[cut_line:]]
        self._line_sync = [lsync[cut_line:]]
        self._line_dwell = [ldwell[cut_line:]]
        self._n_pending_lines = nl - cut_line
        if nb - cut_blk:
            rest = {k: v[cut_blk:] for k, v in blk.items()}
            rest["line"] = rest["line"] - cut_line
            self._blk = [rest]
        else:
            self._blk = []
        self._n_pending_blocks = nb - cut_blk

    def _record(self, p: np.ndarray) -> None:
        start = self._first_line
        n = p.shape[0]
        while self._next_checkpoint <= start + n:
            idx = self._next_checkpoint - start - 1
            self.checkpoints.append((self._next_checkpoint, round(float(p[idx]), 3)))
            self._next_checkpoint += self.checkpoint_lines
            if len(self.checkpoints) >= MAX_CHECKPOINTS:
                self.checkpoints = self.checkpoints[1::2]
                self.checkpoint_lines *= 2
                self._next_checkpoint = self.checkpoints[-1][0] + self.checkpoint_lines

    def finish(self) -> Estimate:
        self._solve(final=True)
        total = max(self._last_f, self._last_p) + END_LATENCY_S
        lines = self._n_lines
        if not self.checkpoints or self.checkpoints[-1][0] != lines:
            self.checkpoints.append((lines, round(total, 3)))
        return Estimate(
            total_s=total,
            lines=lines,
            blocks=self._first_block,
            settings=self.settings,
            checkpoints=self.checkpoints,
            link_bound_s=self._total_bytes / self.settings.bytes_per_s,
        )
