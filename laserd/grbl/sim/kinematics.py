"""Planner blocks and their motion in time: how long a job really takes on the machine.

Choice of model (documented because it sets every timing figure the simulator gives):

* Each block moves along a straight line with a trapezoidal speed profile: accelerate at the
  block's acceleration, cruise at its nominal speed, decelerate to its exit speed.
* Junction speeds follow GRBL's junction-deviation rule (``$11``): the sharper the corner the
  slower the machine passes it; a straight continuation keeps full speed. The formula is the
  one laserd's time estimates use (:func:`laserd.planner_settings.junction_speed_sq`, with the
  acceleration limited per axis along the junction vector, as the firmware does), so a job on
  the simulator takes what the estimate says.
* A backward pass over the queued blocks caps every junction so the machine can always stop
  by the end of the *last queued* block — the planner never counts on lines that have not
  arrived, which is why a sender that cannot keep the planner fed makes the machine slow down.
* Arcs reach the planner already cut into chords (as GRBL's ``mc_arc`` does), so an arc
  fills the planner like the real one and its time is its chord length.
* Overrides change nominal speeds at once; the profile adapts with the same acceleration.

Positions are machine coordinates in mm, speeds mm/s, accelerations mm/s², times seconds on
the simulated clock (the controller core scales real time into it).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from laserd.planner_settings import junction_speed_sq

EPSILON_MM = 1e-9
MIN_SPEED_MM_S = 1e-3


@dataclass(slots=True)
class PlannerBlock:
    """One straight move queued in the planner, with the laser state it carries."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]
    length_mm: float
    unit: tuple[float, float, float]
    feed_mm_s: float  # programmed speed, already capped by the axes' max rates
    max_rate_mm_s: float  # the axes' limit along this direction
    accel_mm_s2: float
    rapid: bool = False
    jog: bool = False
    spindle: int = 5
    laser_s: float = 0.0
    motion_mode: int = 0
    junction_mm_s: float = 0.0  # largest entry speed the corner with the previous block allows

    def nominal_mm_s(self, feed_override_pct: int, rapid_override_pct: int) -> float:
        """Target cruise speed with overrides applied (jogs ignore them, as in GRBL)."""
        if self.jog:
            speed = self.feed_mm_s
        elif self.rapid:
            speed = self.feed_mm_s * rapid_override_pct / 100.0
        else:
            speed = self.feed_mm_s * feed_override_pct / 100.0
        return max(MIN_SPEED_MM_S, min(speed, self.max_rate_mm_s))


def axis_limit(unit: tuple[float, float, float], per_axis: tuple[float, float, float]) -> float:
    """The largest speed (or acceleration) along ``unit`` that keeps every axis within its limit."""
    limit = math.inf
    for component, axis_max in zip(unit, per_axis, strict=True):
        if abs(component) > 1e-12:
            limit = min(limit, axis_max / abs(component))
    return limit


def junction_speed(
    prev: PlannerBlock,
    nxt: PlannerBlock,
    deviation_mm: float,
    accel_axes: tuple[float, float, float] | None = None,
) -> float:
    """GRBL's junction-deviation corner speed between two blocks (mm/s)."""
    if accel_axes is not None:
        return math.sqrt(junction_speed_sq(prev.unit, nxt.unit, accel_axes, deviation_mm))
    cos_theta = -sum(a * b for a, b in zip(prev.unit, nxt.unit, strict=True))
    if cos_theta > 0.999999:  # full reversal
        return 0.0
    if cos_theta < -0.999999:  # straight on
        return math.inf
    sin_half = math.sqrt(0.5 * (1.0 - cos_theta))
    accel = min(prev.accel_mm_s2, nxt.accel_mm_s2)
    return math.sqrt(accel * deviation_mm * sin_half / (1.0 - sin_half))


def _profile_step(v: float, d: float, vn: float, ve: float, a: float,
                  dt: float) -> tuple[float, float, float]:  # fmt: skip
    """Advance up to ``dt`` along a block with ``d`` mm left: (time used, mm moved, new speed)."""
    if v * v + 2 * a * d <= ve * ve:
        phases = [(v, math.sqrt(v * v + 2 * a * d), d)]
    elif v * v - 2 * a * d > ve * ve:
        phases = [(v, ve, d)]
    else:
        vp = max(ve, min(vn, math.sqrt((2 * a * d + v * v + ve * ve) / 2)))
        d1 = abs(vp * vp - v * v) / (2 * a)
        d3 = (vp * vp - ve * ve) / (2 * a)
        phases = [(v, vp, d1), (vp, vp, max(0.0, d - d1 - d3)), (vp, ve, d3)]
    used = 0.0
    moved = 0.0
    for v0, v1, dist in phases:
        if dist <= EPSILON_MM:
            v = v1
            continue
        t_phase = 2 * dist / (v0 + v1) if v0 + v1 > 0 else math.inf
        if t_phase <= dt - used:
            used += t_phase
            moved += dist
            v = v1
            continue
        tr = dt - used
        acc = (v1 * v1 - v0 * v0) / (2 * dist)
        return dt, min(d, moved + v0 * tr + 0.5 * acc * tr * tr), max(0.0, v0 + acc * tr)
    return used, d, v


class MotionQueue:
    """The planner ring (capacity ``planner_blocks``) and the block being executed at its head."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.blocks: deque[PlannerBlock] = deque()
        self.speed_mm_s = 0.0
        self.done_mm = 0.0
        self._rest = (0.0, 0.0, 0.0)
        self.completed = 0

    @property
    def free(self) -> int:
        return self.capacity - len(self.blocks)

    def position(self) -> tuple[float, float, float]:
        if not self.blocks:
            return self._rest
        b = self.blocks[0]
        s = self.done_mm
        return (b.start[0] + b.unit[0] * s, b.start[1] + b.unit[1] * s,
                b.start[2] + b.unit[2] * s)  # fmt: skip

    def set_position(self, position: tuple[float, float, float]) -> None:
        """Homing or a reset: the machine now is where it is said to be, at rest."""
        self.blocks.clear()
        self.speed_mm_s = 0.0
        self.done_mm = 0.0
        self._rest = position

    def stop_here(self) -> None:
        """Drop every queued block and stand still at the current point (reset, alarm, cancel)."""
        self.set_position(self.position())

    def push(
        self,
        block: PlannerBlock,
        deviation_mm: float,
        accel_axes: tuple[float, float, float] | None = None,
    ) -> None:
        if self.blocks:
            block.junction_mm_s = junction_speed(self.blocks[-1], block, deviation_mm, accel_axes)
        else:
            block.junction_mm_s = 0.0
        self.blocks.append(block)

    def _exit_speed(self, feed_pct: int, rapid_pct: int) -> float:
        """Highest speed the head block may leave with so every later block can still stop."""
        v = 0.0
        blocks = self.blocks
        for i in range(len(blocks) - 1, 0, -1):
            b = blocks[i]
            v = min(
                b.junction_mm_s,
                math.sqrt(v * v + 2 * b.accel_mm_s2 * b.length_mm),
                b.nominal_mm_s(feed_pct, rapid_pct),
                blocks[i - 1].nominal_mm_s(feed_pct, rapid_pct),
            )
        return v

    def time_to_head_end(self, feed_pct: int, rapid_pct: int) -> float:
        """A rough bound on when the head block ends (for scheduling the next wake-up)."""
        if not self.blocks:
            return math.inf
        b = self.blocks[0]
        speed = max(self.speed_mm_s, b.nominal_mm_s(feed_pct, rapid_pct) * 0.5, MIN_SPEED_MM_S)
        return max(0.0, b.length_mm - self.done_mm) / speed

    def advance(self, dt_s: float, feed_pct: int, rapid_pct: int,
                hold: bool = False) -> list[PlannerBlock]:  # fmt: skip
        """Move for ``dt_s`` simulated seconds; return the blocks finished meanwhile.

        With ``hold`` the machine decelerates at the head block's acceleration through block
        boundaries until it stands still (feed hold, door, jog cancel).
        """
        finished: list[PlannerBlock] = []
        while dt_s > 1e-12 and self.blocks:
            b = self.blocks[0]
            d_rem = b.length_mm - self.done_mm
            if hold:
                if self.speed_mm_s <= MIN_SPEED_MM_S:
                    self.speed_mm_s = 0.0
                    break
                v, a = self.speed_mm_s, b.accel_mm_s2
                disc = v * v - 2 * a * d_rem
                if disc > 0:  # reaches the end of this block still moving
                    t = (v - math.sqrt(disc)) / a
                    if t <= dt_s:
                        dt_s -= t
                        self.speed_mm_s = math.sqrt(disc)
                        self.done_mm = b.length_mm
                    else:
                        self.done_mm += v * dt_s - 0.5 * a * dt_s * dt_s
                        self.speed_mm_s = v - a * dt_s
                        dt_s = 0.0
                else:
                    t = min(dt_s, v / a)
                    self.done_mm = min(b.length_mm, self.done_mm + v * t - 0.5 * a * t * t)
                    self.speed_mm_s = max(0.0, v - a * t)
                    dt_s -= t
                    if self.speed_mm_s <= MIN_SPEED_MM_S:
                        self.speed_mm_s = 0.0
                        dt_s = 0.0
            else:
                vn = b.nominal_mm_s(feed_pct, rapid_pct)
                ve = min(self._exit_speed(feed_pct, rapid_pct), vn)
                used, moved, v_new = _profile_step(
                    self.speed_mm_s, d_rem, vn, ve, b.accel_mm_s2, dt_s
                )
                dt_s -= used
                self.done_mm += moved
                self.speed_mm_s = v_new
            if self.done_mm >= b.length_mm - EPSILON_MM:
                self.blocks.popleft()
                self.done_mm = 0.0
                self._rest = b.end
                self.completed += 1
                finished.append(b)
                if not self.blocks:
                    self.speed_mm_s = 0.0
        return finished
