"""Parse and check one G-code block the way GRBL 1.1h's ``gc_execute_line`` does.

The parser only *decides*: it turns a cleaned line (no spaces, no comments, upper case)
plus the current modal state into a :class:`BlockPlan` — the new modal state and the ordered
things to do (syncs, dwell, offset changes, motions). It raises :class:`GrblError` with the
board's own error number before anything changes, as GRBL validates a whole block before
executing it. The controller core carries the plan out against its planner and clock.

Why it is one long module, and :func:`_plan` one long function: they mirror
``gc_execute_line`` — the modal groups, the word checks and their error numbers, in the
board's order (line number, tool, feed, spindle, coolant, dwell, offsets, motion) — so they
can be read against GRBL's ``gcode.c``; split, the order would no longer read as one sequence
(tests/unit/test_rooms.py lists both with this reason).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

MM_PER_INCH = 25.4
MAX_LINE_NUMBER = 9_999_999
MAX_TOOL_NUMBER = 255
ARC_ANGULAR_EPSILON = 5e-7

# G codes are keyed as round(value * 10): G1 -> 10, G28.1 -> 281, G91.1 -> 911.
G_GROUPS: dict[int, str] = {
    0: "motion", 10: "motion", 20: "motion", 30: "motion", 800: "motion",
    170: "plane", 180: "plane", 190: "plane",
    900: "distance", 910: "distance",
    911: "arc_distance",
    930: "feed_mode", 940: "feed_mode",
    200: "units", 210: "units",
    400: "cutter",
    431: "tool_length", 490: "tool_length",
    540: "wcs", 550: "wcs", 560: "wcs", 570: "wcs", 580: "wcs", 590: "wcs",
    610: "path",
    40: "non_modal", 100: "non_modal", 280: "non_modal", 281: "non_modal",
    300: "non_modal", 301: "non_modal", 530: "non_modal", 920: "non_modal", 921: "non_modal",
}  # fmt: skip
M_GROUPS: dict[int, str] = {
    0: "stopping", 1: "stopping", 2: "stopping", 30: "stopping",
    3: "spindle", 4: "spindle", 5: "spindle",
    8: "coolant", 9: "coolant",
}  # fmt: skip
VALUE_LETTERS = frozenset("FIJKLNPRSTXYZ")
AXIS_LETTERS = {"X": 0, "Y": 1, "Z": 2}
PLANES = {170: (0, 1, 2), 180: (2, 0, 1), 190: (1, 2, 0)}
FEED_MOTIONS = frozenset({10, 20, 30})

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")


class GrblError(Exception):
    """A block GRBL rejects; ``code`` is the number after ``error:``."""

    def __init__(self, code: int) -> None:
        super().__init__(f"error:{code}")
        self.code = code


@dataclass
class Modal:
    """GRBL's modal parser state (``$G``) plus the persistent F and S."""

    motion: int = 0
    plane: int = 170
    units: int = 210
    distance: int = 900
    feed_mode: int = 940
    wcs: int = 0  # 0..5 for G54..G59
    spindle: int = 5  # 3, 4 or 5
    coolant_flood: bool = False
    program_flow: int = 0
    feed_mm_min: float = 0.0
    spindle_s: float = 0.0
    tool: int = 0

    def report(self) -> str:
        """The ``[GC:...]`` line of ``$G``."""
        motion = "G80" if self.motion == 800 else f"G{self.motion // 10}"
        parts = [motion, f"G{54 + self.wcs}", f"G{self.plane // 10}", f"G{self.units // 10}",
                 f"G{self.distance // 10}", f"G{self.feed_mode // 10}"]  # fmt: skip
        if self.program_flow:
            parts.append(f"M{self.program_flow}")
        parts.append(f"M{self.spindle}")
        parts.append("M8" if self.coolant_flood else "M9")
        feed = self.feed_mm_min / MM_PER_INCH if self.units == 200 else self.feed_mm_min
        parts += [f"T{self.tool}", f"F{feed:.0f}", f"S{self.spindle_s:.0f}"]
        return "[GC:" + " ".join(parts) + "]"


@dataclass
class Offsets:
    """Coordinate data: G54..G59 and G28/G30 live in EEPROM; G92 and G43.1 do not."""

    wcs: list[list[float]] = field(default_factory=lambda: [[0.0, 0.0, 0.0] for _ in range(6)])
    g92: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    tool_length_mm: float = 0.0
    g28: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    g30: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    def wco(self, wcs_index: int) -> list[float]:
        """Work coordinate offset: WPos = MPos - WCO."""
        base = self.wcs[wcs_index]
        return [base[0] + self.g92[0], base[1] + self.g92[1],
                base[2] + self.g92[2] + self.tool_length_mm]  # fmt: skip


@dataclass
class Move:
    """One motion the block asks for, in machine coordinates (mm)."""

    target: tuple[float, float, float]
    rapid: bool
    feed_mm_min: float = 0.0
    machine_coords: bool = False
    arc: tuple[float, float, float, int, bool] | None = None  # centre a0,a1; sweep; plane; cw


@dataclass
class BlockPlan:
    """What the controller must do for one block, in GRBL's execution order."""

    modal: Modal
    offsets: Offsets
    position_after: tuple[float, float, float]
    sync_before: bool = False
    dwell_s: float | None = None
    store_home: str | None = None  # "g28" / "g30": store the current position
    moves: list[Move] = field(default_factory=list)
    program_flow: int = 0
    laser_sync: bool = False


def split_words(line: str) -> list[tuple[str, float, str]]:
    """``G1X10.5`` -> [("G", 1.0, "1"), ("X", 10.5, "10.5")]; errors 1 and 2 as GRBL gives them."""
    words = []
    pos = 0
    while pos < len(line):
        letter = line[pos]
        if not ("A" <= letter <= "Z"):
            raise GrblError(1)
        m = _NUMBER.match(line, pos + 1)
        if m is None:
            raise GrblError(2)
        words.append((letter, float(m.group()), m.group()))
        pos = m.end()
    return words


def _xyz(values: Sequence[float]) -> tuple[float, float, float]:
    """A machine position (three axes) from a list or tuple of coordinates."""
    x, y, z = values
    return (x, y, z)


def _g_key(value: float) -> int:
    return round(value * 10)


def parse_block(line: str, modal: Modal, offsets: Offsets, position: tuple[float, ...],
                *, laser_mode: bool, arc_tolerance_mm: float) -> BlockPlan:  # fmt: skip
    """Check one G-code block against the modal state; return what executing it means."""
    g_seen: dict[str, int] = {}
    m_seen: dict[str, int] = {}
    values: dict[str, float] = {}
    axis_command: str | None = None  # "motion", "non_modal", "tool_length"
    for letter, value, _text in split_words(line):
        if letter == "G":
            key = _g_key(value)
            group = G_GROUPS.get(key)
            if group is None:
                raise GrblError(23 if value != int(value) and int(value) in (0, 1, 2, 3) else 20)
            if group in g_seen:
                raise GrblError(21)
            if key in (100, 280, 300, 920) or key in (0, 10, 20, 30) or key in (431, 490):
                if axis_command is not None:
                    raise GrblError(24)
                axis_command = (
                    "motion" if key <= 30 else "tool_length" if key in (431, 490) else "non_modal"
                )
            g_seen[group] = key
        elif letter == "M":
            if value != int(value):
                raise GrblError(23)
            group = M_GROUPS.get(int(value))
            if group is None:
                raise GrblError(20)
            if group in m_seen:
                raise GrblError(21)
            m_seen[group] = int(value)
        elif letter in VALUE_LETTERS:
            if letter in values:
                raise GrblError(25)
            if letter in "FNPST" and value < 0:
                raise GrblError(4)
            values[letter] = value
        else:
            raise GrblError(20)
    return _plan(g_seen, m_seen, values, axis_command, modal, offsets, tuple(position),
                 laser_mode=laser_mode, arc_tolerance_mm=arc_tolerance_mm)  # fmt: skip


def _plan(g_seen: dict[str, int], m_seen: dict[str, int], values: dict[str, float],
          axis_command: str | None, modal: Modal, offsets: Offsets, position: tuple[float, ...],
          *, laser_mode: bool, arc_tolerance_mm: float) -> BlockPlan:  # fmt: skip
    new = replace(modal)
    new_offsets = Offsets(
        wcs=[list(r) for r in offsets.wcs], g92=list(offsets.g92),
        tool_length_mm=offsets.tool_length_mm, g28=list(offsets.g28), g30=list(offsets.g30),
    )  # fmt: skip
    used = set()
    if "N" in values:
        used.add("N")
        if values["N"] > MAX_LINE_NUMBER:
            raise GrblError(27)
    if "T" in values:
        used.add("T")
        if values["T"] > MAX_TOOL_NUMBER:
            raise GrblError(38)
        new.tool = int(values["T"])
    for group in ("units", "distance", "feed_mode", "plane"):
        if group in g_seen:
            setattr(new, group, g_seen[group])
    if "wcs" in g_seen:
        new.wcs = g_seen["wcs"] // 10 - 54
    scale = MM_PER_INCH if new.units == 200 else 1.0
    axis_words = {AXIS_LETTERS[k]: v * scale for k, v in values.items() if k in AXIS_LETTERS}
    used.update(k for k in values if k in AXIS_LETTERS)
    if axis_words and axis_command is None:
        axis_command = "motion"
    non_modal = g_seen.get("non_modal")
    if "motion" in g_seen:
        new.motion = g_seen["motion"]

    # Feed rate.
    block_feed: float | None = None
    if "F" in values:
        used.add("F")
        block_feed = values["F"] * (1.0 if new.feed_mode == 930 else scale)
    if new.feed_mode == 930:
        inverse_time_feed = block_feed
    else:
        inverse_time_feed = None
        if block_feed is not None:
            new.feed_mm_min = block_feed

    # Spindle speed and state, coolant.
    plan = BlockPlan(modal=new, offsets=new_offsets, position_after=_xyz(position))
    if "S" in values:
        used.add("S")
        new.spindle_s = values["S"]
    if "spindle" in m_seen:
        new.spindle = m_seen["spindle"]
    if "coolant" in m_seen:
        new.coolant_flood = m_seen["coolant"] == 8
    spindle_changed = new.spindle != modal.spindle
    coolant_changed = new.coolant_flood != modal.coolant_flood

    # Validate the axis command before anything else is decided.
    moves: list[Move] = []
    target = list(position)
    if non_modal == 40:
        if "P" not in values:
            raise GrblError(28)
        used.add("P")
        plan.dwell_s = values["P"]
    elif non_modal == 100:
        _apply_g10(values, used, axis_words, new, new_offsets, position)
    elif non_modal in (281, 301):
        plan.store_home = "g28" if non_modal == 281 else "g30"
    elif non_modal == 920:
        if not axis_words:
            raise GrblError(26)
        base = new_offsets.wcs[new.wcs]
        for axis, value in axis_words.items():
            extra = new_offsets.tool_length_mm if axis == 2 else 0.0
            new_offsets.g92[axis] = position[axis] - base[axis] - value - extra
    elif non_modal == 921:
        new_offsets.g92 = [0.0, 0.0, 0.0]
    if "tool_length" in g_seen:
        if g_seen["tool_length"] == 490:
            new_offsets.tool_length_mm = 0.0
        else:
            if set(axis_words) - {2} or 2 not in axis_words:
                raise GrblError(37)
            new_offsets.tool_length_mm = axis_words[2]
        axis_words = {}
    wco = new_offsets.wco(new.wcs)

    if non_modal in (280, 300):
        for axis, value in axis_words.items():
            target[axis] = position[axis] + value if new.distance == 910 else value + wco[axis]
        if axis_words:
            moves.append(Move(target=_xyz(target), rapid=True))
        home = new_offsets.g28 if non_modal == 280 else new_offsets.g30
        moves.append(Move(target=_xyz(home), rapid=True, machine_coords=True))
        target = list(home)
    elif axis_command == "motion" and new.motion != 800:
        if non_modal == 530 and new.motion not in (0, 10):
            raise GrblError(30)
        motion_feed = 0.0
        if new.motion in FEED_MOTIONS:
            if new.feed_mode == 930:
                if inverse_time_feed is None or inverse_time_feed <= 0:
                    raise GrblError(22)
            elif new.feed_mm_min <= 0:
                raise GrblError(22)
            motion_feed = new.feed_mm_min
        for axis, value in axis_words.items():
            if non_modal == 530:
                target[axis] = value
            elif new.distance == 910:
                target[axis] = position[axis] + value
            else:
                target[axis] = value + wco[axis]
        if new.motion in (20, 30):
            if not axis_words:
                raise GrblError(26)
            move = _arc_move(values, used, new, position, target, scale, arc_tolerance_mm)
            if new.feed_mode == 930:
                move.feed_mm_min = _arc_length(position, move) * (inverse_time_feed or 0.0)
            else:
                move.feed_mm_min = motion_feed
            moves.append(move)
        elif axis_words:
            feed = motion_feed
            if new.feed_mode == 930 and new.motion == 10:
                feed = math.dist(position, target) * (inverse_time_feed or 0.0)
            moves.append(Move(target=_xyz(target), rapid=new.motion == 0, feed_mm_min=feed,
                              machine_coords=non_modal == 530))  # fmt: skip
    elif axis_command == "motion" and new.motion == 800 and axis_words:
        raise GrblError(31)
    unused = set(values) - used
    if unused:
        raise GrblError(36)

    # Laser mode sync rules (laser_mode.md): spindle/coolant state changes always sync; an S
    # change or a G1<->G0 switch without motion syncs only when M3 is active.
    is_motion = bool(moves) and axis_command == "motion"
    laser_off_mode = new.motion not in FEED_MOTIONS
    s_changed = new.spindle_s != modal.spindle_s
    force = False
    if laser_mode and not is_motion and modal.spindle == 3:
        was_on_mode = modal.motion in FEED_MOTIONS
        force = was_on_mode == laser_off_mode
    if (s_changed or force) and modal.spindle != 5 and new.spindle == modal.spindle:
        plan.laser_sync = not (laser_mode and is_motion)
    plan.sync_before = (
        plan.laser_sync or spindle_changed or coolant_changed or plan.dwell_s is not None
        or non_modal in (100, 280, 300, 920, 921) or "tool_length" in g_seen
        or "wcs" in g_seen
    )  # fmt: skip
    if "stopping" in m_seen:
        plan.program_flow = m_seen["stopping"]
    plan.moves = moves
    plan.position_after = _xyz(target) if moves else _xyz(position)
    return plan


def _apply_g10(values: dict[str, float], used: set[str], axis_words: dict[int, float],
               new: Modal, offsets: Offsets, position: tuple[float, ...]) -> None:  # fmt: skip
    if "L" not in values or "P" not in values:
        raise GrblError(28)
    used.update(("L", "P"))
    if not axis_words:
        raise GrblError(26)
    if values["P"] != int(values["P"]):
        raise GrblError(20)
    index = int(values["P"])
    if index > 6:
        raise GrblError(29)
    index = new.wcs if index == 0 else index - 1
    level = values["L"]
    row = offsets.wcs[index]
    for axis, value in axis_words.items():
        if level == 2:
            row[axis] = value
        elif level == 20:
            extra = offsets.tool_length_mm if axis == 2 else 0.0
            row[axis] = position[axis] - offsets.g92[axis] - value - extra
        else:
            raise GrblError(20)


def _arc_move(values: dict[str, float], used: set[str], new: Modal, position: tuple[float, ...],
              target: list[float], scale: float, arc_tolerance_mm: float) -> Move:  # fmt: skip
    a0, a1, _lin = PLANES[new.plane]
    x = target[a0] - position[a0]
    y = target[a1] - position[a1]
    cw = new.motion == 20
    offset_letters = "IJK"
    if "R" in values:
        used.add("R")
        r = values["R"] * scale
        if x == 0 and y == 0:
            raise GrblError(33)
        h_x2 = 4.0 * r * r - x * x - y * y
        if h_x2 < 0:
            raise GrblError(33)
        h = -math.sqrt(h_x2) / math.hypot(x, y)
        if not cw:
            h = -h
        if r < 0:
            h = -h
        i = 0.5 * (x - y * h)
        j = 0.5 * (y + x * h)
    else:
        in_plane = {a0, a1}
        given = {idx: values[letter] * scale for idx, letter in enumerate(offset_letters)
                 if letter in values}  # fmt: skip
        used.update(letter for letter in offset_letters if letter in values)
        if not (set(given) & in_plane):
            raise GrblError(35)
        i = given.get(a0, 0.0)
        j = given.get(a1, 0.0)
        r_start = math.hypot(i, j)
        delta = abs(math.hypot(x - i, y - j) - r_start)
        if delta > 0.005 and (delta > 0.5 or delta > 0.001 * r_start):
            raise GrblError(33)
    cx = position[a0] + i
    cy = position[a1] + j
    rx, ry = -i, -j
    tx, ty = target[a0] - cx, target[a1] - cy
    sweep = math.atan2(rx * ty - ry * tx, rx * tx + ry * ty)
    if cw:
        if sweep >= -ARC_ANGULAR_EPSILON:
            sweep -= 2 * math.pi
    elif sweep <= ARC_ANGULAR_EPSILON:
        sweep += 2 * math.pi
    del arc_tolerance_mm  # segmentation happens in the controller with the live $12
    return Move(target=_xyz(target), rapid=False, arc=(cx, cy, sweep, new.plane, cw))


def _arc_length(position: tuple[float, ...], move: Move) -> float:
    assert move.arc is not None
    cx, cy, sweep, plane, _cw = move.arc
    a0, a1, lin = PLANES[plane]
    radius = math.hypot(position[a0] - cx, position[a1] - cy)
    return math.hypot(abs(sweep) * radius, move.target[lin] - position[lin])


def arc_points(position: tuple[float, ...], move: Move,
               arc_tolerance_mm: float) -> Iterator[tuple[float, float, float]]:  # fmt: skip
    """The chord end points GRBL's ``mc_arc`` would queue, the last one the exact target.

    A generator: a huge arc costs time (as on the board), not a list of a million points.
    """
    assert move.arc is not None
    cx, cy, sweep, plane, _cw = move.arc
    a0, a1, lin = PLANES[plane]
    radius = math.hypot(position[a0] - cx, position[a1] - cy)
    tol = max(arc_tolerance_mm, 1e-6)
    chord = math.sqrt(max(tol * (2 * radius - tol), 1e-12))
    segments = int(abs(0.5 * sweep * radius) / chord)
    if segments > 1:
        start_angle = math.atan2(position[a1] - cy, position[a0] - cx)
        dz = (move.target[lin] - position[lin]) / segments
        for k in range(1, segments):
            angle = start_angle + sweep * k / segments
            p = [0.0, 0.0, 0.0]
            p[a0] = cx + radius * math.cos(angle)
            p[a1] = cy + radius * math.sin(angle)
            p[lin] = position[lin] + dz * k
            yield (p[0], p[1], p[2])
    yield (move.target[0], move.target[1], move.target[2])


JOG_G_ALLOWED = frozenset({200, 210, 900, 910, 530})


def parse_jog(line: str, modal: Modal, offsets: Offsets,
              position: tuple[float, ...]) -> tuple[tuple[float, float, float], float]:  # fmt: skip
    """``$J=`` body -> (machine target, feed mm/min); units and distance modes are jog-only."""
    units = modal.units
    distance = modal.distance
    machine = False
    values: dict[str, float] = {}
    for letter, value, _text in split_words(line):
        if letter == "G":
            key = _g_key(value)
            if key not in JOG_G_ALLOWED:
                raise GrblError(16)
            if key in (200, 210):
                units = key
            elif key in (900, 910):
                distance = key
            else:
                machine = True
        elif letter in "XYZFN":
            if letter in values:
                raise GrblError(25)
            values[letter] = value
        else:
            raise GrblError(16)
    scale = MM_PER_INCH if units == 200 else 1.0
    if "F" not in values:
        raise GrblError(22)
    if values["F"] <= 0:
        raise GrblError(4 if values["F"] < 0 else 22)
    axis_words = {AXIS_LETTERS[k]: v * scale for k, v in values.items() if k in AXIS_LETTERS}
    if not axis_words:
        raise GrblError(26)
    wco = offsets.wco(modal.wcs)
    target = list(position)
    for axis, value in axis_words.items():
        if machine:
            target[axis] = value
        elif distance == 910:
            target[axis] = position[axis] + value
        else:
            target[axis] = value + wco[axis]
    return (target[0], target[1], target[2]), values["F"] * scale
