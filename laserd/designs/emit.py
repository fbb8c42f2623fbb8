"""The one G-code writer of vector work: runs → plain GRBL 1.1 G-code.

Output is deliberately plain (``G0``/``G1`` with ``X Y S F``, ``M4``/``M5``, ``M8``/``M9``, no
comments or arcs), so the same analyser as every uploaded file (:func:`laserd.gcode.
analyse_gcode`) checks it, measures it and writes the copy that is streamed. Power is ``M4``
(dynamic: GRBL scales it with the actual speed, so corners do not burn darker) with ``S``
scaled to the controller's ``$30`` (``max_power_s``). In laser mode ``G0`` never burns, so
travel needs no ``S0``. ``S`` and ``F`` are written when they change.
"""

from __future__ import annotations

import math
from typing import BinaryIO

import numpy as np

from laserd.designs.plan import Run
from laserd.gcode.output import fmt_mm

HEADER = b"G21G90\n"


class VectorWriter:
    """Writes runs to a binary file, keeping the modal state between them."""

    def __init__(
        self, fh: BinaryIO, *, max_power_s: int, bed_mm: tuple[float, float]
    ) -> None:
        self.fh = fh
        self.max_power_s = max_power_s
        self.bed = bed_mm
        self.reset_state()
        self.air = False

    def reset_state(self) -> None:
        """After foreign G-code (a raster part) nothing modal is known."""
        self.laser_on = False
        self.s: int | None = None
        self.f: float | None = None
        self.x: str | None = None
        self.y: str | None = None

    def power_s(self, pct: float) -> int:
        return round(pct / 100.0 * self.max_power_s)

    def set_air(self, on: bool) -> None:
        if on != self.air:
            self.fh.write(b"M8\n" if on else b"M9\n")
            self.air = on

    def write_run(self, run: Run) -> None:
        layer = run.layer
        self.set_air(layer.air_assist)
        if not self.laser_on:
            self.fh.write(b"M4\n")
            self.laser_on = True
        s = self.power_s(layer.power_pct)
        out: list[bytes] = []
        if run.hatch:
            ovs = layer.fill.overscan_mm
            for line in run.polylines:
                self._hatch_line(out, line[0], line[-1], ovs, s, layer.speed_mm_min)
        else:
            for pts in run.polylines:
                self._polyline(out, pts, s, layer.speed_mm_min)
        self.fh.write(b"".join(out))

    def finish(self) -> None:
        self.fh.write(b"M5\n")
        self.set_air(False)

    # ----------------------------------------------------------------------- moves

    def _xy(self, x: float, y: float) -> bytes:
        tx, ty = fmt_mm(x), fmt_mm(y)
        words = b""
        if tx != self.x:
            words += b"X" + tx.encode()
        if ty != self.y:
            words += b"Y" + ty.encode()
        self.x, self.y = tx, ty
        return words

    def _travel(self, out: list[bytes], x: float, y: float) -> None:
        words = self._xy(x, y)
        if words:
            out.append(b"G0" + words + b"\n")

    def _feed(self, out: list[bytes], x: float, y: float, s: int, f: float) -> None:
        words = self._xy(x, y)
        if not words:
            return
        if s != self.s:
            words += b"S%d" % s
            self.s = s
        if f != self.f:
            words += b"F" + fmt_mm(f, 1).encode()
            self.f = f
        out.append(b"G1" + words + b"\n")

    def _polyline(self, out: list[bytes], pts: np.ndarray, s: int, f: float) -> None:
        if len(pts) == 0:
            return
        self._travel(out, float(pts[0, 0]), float(pts[0, 1]))
        if len(pts) == 1:
            return
        for x, y in pts[1:].tolist():
            self._feed(out, x, y, s, f)

    def _hatch_line(
        self, out: list[bytes], a: np.ndarray, b: np.ndarray, ovs: float, s: int, f: float
    ) -> None:
        d = b - a
        length = float(math.hypot(d[0], d[1]))
        if length <= 0:
            return
        u = d / length
        run_in = self._clip_to_bed(a, -u, ovs)
        run_out = self._clip_to_bed(b, u, ovs)
        self._travel(out, float(run_in[0]), float(run_in[1]))
        if ovs > 0:
            self._feed(out, float(a[0]), float(a[1]), 0, f)
        self._feed(out, float(b[0]), float(b[1]), s, f)
        if ovs > 0:
            self._feed(out, float(run_out[0]), float(run_out[1]), 0, f)

    def _clip_to_bed(self, p: np.ndarray, u: np.ndarray, ovs: float) -> np.ndarray:
        """``p + ovs·u`` shortened so the laser-off overscan stays on the bed."""
        if ovs <= 0:
            return p
        t = ovs
        for axis, size in enumerate(self.bed):
            if u[axis] > 1e-12:
                t = min(t, max(0.0, (size - p[axis]) / u[axis]))
            elif u[axis] < -1e-12:
                t = min(t, max(0.0, -p[axis] / u[axis]))
        return p + t * u
