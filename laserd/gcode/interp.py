"""GRBL's modal state machine for one line at a time (the reference path).

It follows GRBL 1.1's block rules closely enough to refuse what GRBL would refuse with an
error (repeated words, two commands of one modal group, undefined feed, arcs that do not close)
and to know, for every move, where it goes, how fast, and whether the beam is on. The fast
vectorised path in :mod:`laserd.gcode.fast` must agree with it; the tests compare both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from laserd.gcode.dialect import G_GROUPS, G_REFUSED, M_GROUPS, M_REFUSED
from laserd.gcode.errors import LineError
from laserd.gcode.lexer import Line
from laserd.gcode.segments import Segments

MM_PER_INCH = 25.4
#: GRBL's default arc tolerance ($12, mm): arcs become the chords mc_arc would cut.
DEFAULT_ARC_TOLERANCE_MM = 0.002
#: GRBL counts arc segments in a uint16.
_MAX_ARC_SEGMENTS = 65535
_G, _M = ord("G"), ord("M")
_X, _Y, _Z = ord("X"), ord("Y"), ord("Z")
_F, _S, _P = ord("F"), ord("S"), ord("P")
_ARC_WORDS = (ord("I"), ord("J"), ord("K"), ord("R"))


@dataclass(slots=True)
class ModalState:
    """The controller's state that survives from line to line (GRBL's power-on defaults)."""

    motion: int = 0  # G code in tenths: 0, 10, 20, 30 or 800 (G80)
    absolute: bool = True
    inches: bool = False
    feed_mm_min: float = 0.0  # 0: undefined, as in GRBL
    s: float = 0.0
    spindle: int = 5  # 3, 4 or 5
    coolant: int = 9  # 7, 8 or 9 (off)
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    homes: bool = False

    def copy(self) -> ModalState:
        return ModalState(
            self.motion,
            self.absolute,
            self.inches,
            self.feed_mm_min,
            self.s,
            self.spindle,
            self.coolant,
            self.x,
            self.y,
            self.z,
            self.homes,
        )


@dataclass(slots=True)
class Interpreter:
    """Executes lexed lines against a :class:`ModalState`, collecting segments."""

    state: ModalState
    rapid_mm_min: float
    arc_tolerance_mm: float = DEFAULT_ARC_TOLERANCE_MM
    extra_s: float = 0.0
    #: Index of the streamed line being executed (set by the reader), for ``Segments.line``.
    line_index: int = 0
    #: Lines that wait for the planner to empty (spindle/coolant change, G4, M2/M30) and the
    #: dwell of each; lines that change S while the laser is on (a wait without laser mode).
    sync_lines: list[int] = field(default_factory=list)
    sync_dwell: list[float] = field(default_factory=list)
    s_lines: list[int] = field(default_factory=list)
    _x0: list[float] = field(default_factory=list)
    _y0: list[float] = field(default_factory=list)
    _x1: list[float] = field(default_factory=list)
    _y1: list[float] = field(default_factory=list)
    _p: list[float] = field(default_factory=list)
    _r: list[bool] = field(default_factory=list)
    _f: list[float] = field(default_factory=list)
    _z: list[float] = field(default_factory=list)
    _ln: list[int] = field(default_factory=list)
    _m3: list[bool] = field(default_factory=list)

    def take_segments(self) -> Segments:
        seg = Segments.from_lists(
            self._x0,
            self._y0,
            self._x1,
            self._y1,
            self._p,
            self._r,
            self._f,
            self._z,
            self._ln,
            self._m3,
        )
        for lst in (self._x0, self._y0, self._x1, self._y1, self._p, self._r, self._f):
            lst.clear()
        self._z.clear()
        self._ln.clear()
        self._m3.clear()
        return seg

    def _emit(self, x1: float, y1: float, rapid: bool, z1: float) -> None:
        st = self.state
        power = 0.0 if rapid or st.spindle == 5 else st.s
        self._x0.append(st.x)
        self._y0.append(st.y)
        self._x1.append(x1)
        self._y1.append(y1)
        self._p.append(power)
        self._r.append(rapid)
        self._f.append(self.rapid_mm_min if rapid else st.feed_mm_min)
        self._z.append(z1)
        self._ln.append(self.line_index)
        self._m3.append(st.spindle == 3)
        st.x, st.y, st.z = x1, y1, z1

    def execute(self, line: Line) -> None:
        """Apply one line; raise :class:`LineError` (state unchanged) if GRBL would refuse it."""
        if line.system:
            # $H: the machine homes; positions after it are in the same work coordinates.
            self.state.homes = True
            return
        if not line.words:
            return
        gcodes: dict[str, int] = {}
        mcodes: dict[str, int] = {}
        values: dict[int, float] = {}
        for letter, value in line.words:
            if letter == _G:
                code = round(value * 10)
                if abs(value * 10 - code) > 1e-6:
                    raise LineError(f"G{value:g} is not a G-code GRBL knows")
                if code in G_REFUSED:
                    raise LineError(G_REFUSED[code])
                group = G_GROUPS.get(code)
                if group is None:
                    raise LineError(f"G{value:g} is not supported by GRBL 1.1")
                if group in gcodes:
                    raise LineError(f"two G-codes of the {group} group on one line")
                gcodes[group] = code
            elif letter == _M:
                code = round(value)
                if value != code:
                    raise LineError(f"M{value:g} is not an M-code GRBL knows")
                if code in M_REFUSED:
                    raise LineError(M_REFUSED[code])
                group = M_GROUPS.get(code)
                if group is None:
                    raise LineError(f"M{code} is not supported by GRBL 1.1")
                if group in mcodes:
                    raise LineError(f"two M-codes of the {group} group on one line")
                mcodes[group] = code
            else:
                if letter in values:
                    raise LineError(f"repeated {chr(letter)} word")
                values[letter] = value
        self._apply(gcodes, mcodes, values)

    def _apply(
        self, gcodes: dict[str, int], mcodes: dict[str, int], values: dict[int, float]
    ) -> None:
        st = self.state
        new, scale, dwell = self._next_modal(gcodes, mcodes, values)
        axes = [a for a in (_X, _Y, _Z) if a in values]
        arc_words = [a for a in _ARC_WORDS if a in values]
        motion_block = bool(axes) or "motion" in gcodes
        if new.motion == 800 and axes:
            raise LineError("axis words while motion is cancelled (G80)")
        is_arc = new.motion in (20, 30) and motion_block
        if arc_words and not is_arc:
            raise LineError(f"{chr(arc_words[0])} word without an arc (G2/G3)")
        if new.motion in (10, 20, 30) and motion_block and new.feed_mm_min <= 0:
            raise LineError("feed rate undefined: set F before the first G1/G2/G3")

        def target(axis: int, current: float) -> float:
            if axis not in values:
                return current
            v = values[axis] * scale
            return v if new.absolute else current + v

        tx, ty, tz = target(_X, st.x), target(_Y, st.y), target(_Z, st.z)
        arc_points: list[tuple[float, float]] | None = None
        if is_arc:
            arc_points = self._arc(new, values, scale, tx, ty, bool({_X, _Y} & set(axes)))

        # Everything checked: commit the new modal state and emit the motion.
        waits = new.spindle != st.spindle or new.coolant != st.coolant or dwell
        waits = waits or "stopping" in mcodes
        if new.s != st.s and new.spindle != 5:
            self.s_lines.append(self.line_index)
        st.inches, st.absolute = new.inches, new.absolute
        st.feed_mm_min, st.s = new.feed_mm_min, new.s
        st.spindle, st.motion, st.coolant = new.spindle, new.motion, new.coolant
        if waits:
            self.sync_lines.append(self.line_index)
            self.sync_dwell.append(values[_P] if dwell else 0.0)
        if dwell:
            self.extra_s += values[_P]
        if axes or is_arc:
            rapid = st.motion == 0
            if arc_points is not None:
                z0, n = st.z, len(arc_points)
                for k, (px, py) in enumerate(arc_points, 1):
                    self._emit(px, py, False, tz if k == n else z0 + (tz - z0) * k / n)
            else:
                self._emit(tx, ty, rapid, tz)
        if "stopping" in mcodes:
            st.motion, st.absolute, st.spindle, st.coolant = 10, True, 5, 9

    def _next_modal(
        self, gcodes: dict[str, int], mcodes: dict[str, int], values: dict[int, float]
    ) -> tuple[ModalState, float, bool]:
        """The modal state after this line's words (checked, not yet committed), its unit
        scale, and whether it is a dwell (G4)."""
        new = self.state.copy()
        if "units" in gcodes:
            new.inches = gcodes["units"] == 200
        if "distance" in gcodes:
            new.absolute = gcodes["distance"] == 900
        scale = MM_PER_INCH if new.inches else 1.0
        if _F in values:
            if values[_F] < 0:
                raise LineError("negative feed rate F")
            new.feed_mm_min = values[_F] * scale
        if _S in values:
            if values[_S] < 0:
                raise LineError("negative laser power S")
            new.s = values[_S]
        if "spindle" in mcodes:
            new.spindle = mcodes["spindle"]
        if "coolant" in mcodes:
            new.coolant = mcodes["coolant"]
        dwell = gcodes.get("non_modal") == 40
        if dwell:
            if _P not in values:
                raise LineError("G4 dwell needs a P word (seconds)")
            if values[_P] < 0:
                raise LineError("negative dwell time P")
        elif _P in values:
            raise LineError("P word without G4")
        if "motion" in gcodes:
            new.motion = gcodes["motion"]
        return new, scale, dwell

    def _arc(
        self,
        new: ModalState,
        values: dict[int, float],
        scale: float,
        tx: float,
        ty: float,
        has_xy: bool,
    ) -> list[tuple[float, float]]:
        """The chords of an arc (G2/G3) from the current position to ``(tx, ty)``."""
        x0, y0 = self.state.x, self.state.y
        clockwise = new.motion == 20
        cx, cy, r = _arc_centre(values, scale, (x0, y0), (tx, ty), clockwise, has_xy)
        a0 = math.atan2(y0 - cy, x0 - cx)
        a1 = math.atan2(ty - cy, tx - cx)
        sweep = a1 - a0
        if clockwise:
            if sweep >= -1e-7:
                sweep -= 2 * math.pi
        elif sweep <= 1e-7:
            sweep += 2 * math.pi
        # GRBL's mc_arc: chords whose sagitta is the arc tolerance, end points on the circle.
        tol = self.arc_tolerance_mm
        steps = 0
        if 2 * r > tol:
            steps = math.floor(abs(0.5 * sweep * r) / math.sqrt(tol * (2 * r - tol)))
        steps = max(1, min(steps, _MAX_ARC_SEGMENTS))
        pts = []
        for k in range(1, steps):
            a = a0 + sweep * k / steps
            pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
        pts.append((tx, ty))
        return pts


def _arc_centre(
    values: dict[int, float],
    scale: float,
    start: tuple[float, float],
    end: tuple[float, float],
    clockwise: bool,
    has_xy: bool,
) -> tuple[float, float, float]:
    """An arc's centre and radius, from its R word or its I/J offsets (checked as GRBL does)."""
    x0, y0 = start
    tx, ty = end
    r_word = ord("R")
    if r_word in values:
        if not has_xy:
            raise LineError("arc in radius form needs X or Y")
        dx, dy = tx - x0, ty - y0
        r = values[r_word] * scale
        d2 = dx * dx + dy * dy
        if d2 == 0:
            raise LineError("arc in radius form cannot end where it starts")
        h2 = 4 * r * r - d2
        if h2 < 0:
            raise LineError("arc radius is too small for its end point")
        h = -math.sqrt(h2) / math.sqrt(d2)
        if not clockwise:
            h = -h
        if r < 0:
            h, r = -h, -r
        cx, cy = x0 + 0.5 * (dx - dy * h), y0 + 0.5 * (dy + dx * h)
    else:
        i, j = values.get(ord("I")), values.get(ord("J"))
        if i is None and j is None:
            raise LineError("arc needs I/J offsets or R")
        if ord("K") in values:
            raise LineError("K offset is only for other planes; use I and J (G17)")
        cx, cy = x0 + (i or 0.0) * scale, y0 + (j or 0.0) * scale
        r = math.hypot(x0 - cx, y0 - cy)
        r_end = math.hypot(tx - cx, ty - cy)
        delta = abs(r_end - r)
        if delta > 0.005 and (delta > 0.5 or delta > 0.001 * r):
            raise LineError(
                f"arc end point is not on its circle (radius {r:.3f} at the start, "
                f"{r_end:.3f} at the end)"
            )
    return cx, cy, r
