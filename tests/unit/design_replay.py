"""An independent replay of design G-code for the tests: what the beam actually burns.

Deliberately separate from ``laserd.gcode`` (a bug there must not hide a bug in the design
writer): a tiny interpreter of the subset the writer emits (G0/G1 with X Y S F, M3/M4/M5,
G21/G90, M8/M9) that returns the burned polylines in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

_WORD = re.compile(r"([A-Z])(-?\d+(?:\.\d+)?)")


@dataclass
class Replay:
    burns: list[np.ndarray] = field(default_factory=list)  # burned polylines, in order
    travel_mm: float = 0.0  # every move with the beam off
    rapid_mm: float = 0.0  # G0 moves alone
    air_on_lines: list[int] = field(default_factory=list)
    max_s: float = 0.0
    spindle: str = "M5"
    lines: int = 0

    def burn_points(self) -> np.ndarray:
        return np.vstack(self.burns) if self.burns else np.zeros((0, 2))


def replay(text: str) -> Replay:
    r = Replay()
    x = y = 0.0
    s = 0.0
    motion = 0
    laser = False
    current: list[tuple[float, float]] = []

    def end_burn() -> None:
        nonlocal current
        if len(current) >= 2:
            r.burns.append(np.array(current))
        current = []

    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(";")[0].strip().upper()
        if not line:
            continue
        r.lines += 1
        words = _WORD.findall(line)
        values = {}
        for letter, num in words:
            if letter == "G":
                g = int(float(num))
                if g in (0, 1):
                    motion = g
            elif letter == "M":
                m = int(float(num))
                if m in (3, 4):
                    laser = True
                    r.spindle = f"M{m}"
                elif m == 5:
                    laser = False
                    r.spindle = "M5"
                    end_burn()
                elif m == 8:
                    r.air_on_lines.append(n)
            else:
                values[letter] = float(num)
        if "S" in values:
            s = values["S"]
            r.max_s = max(r.max_s, s)
        if "X" not in values and "Y" not in values:
            continue
        nx, ny = values.get("X", x), values.get("Y", y)
        burning = motion == 1 and laser and s > 0
        if burning:
            if not current or current[-1] != (x, y):
                end_burn()
                current = [(x, y)]
            current.append((nx, ny))
        else:
            end_burn()
            r.travel_mm += float(np.hypot(nx - x, ny - y))
            if motion == 0:
                r.rapid_mm += float(np.hypot(nx - x, ny - y))
        x, y = nx, ny
    end_burn()
    return r
