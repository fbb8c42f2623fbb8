"""GRBL 1.1 serial protocol: real-time bytes, typed messages, a line parser and a line normaliser.

Everything here is pure (no I/O), so it is cheap to test and safe to call per line on the event
loop. :func:`parse_line` turns one received line into a typed message; :class:`StatusTracker`
keeps the fields GRBL only sends now and then (``WCO``, ``Ov``) so that every status report can
be completed with both machine and work positions; :func:`normalise_line` prepares a line for
sending and refuses what the controller would misread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import TypedDict

from laserd.grbl.codes import alarm_meaning, error_meaning
from laserd.grbl.errors import LineRefused

# --------------------------------------------------------------------------- real-time bytes


class RT(IntEnum):
    """Real-time commands: single bytes GRBL picks out of the stream wherever they appear."""

    STATUS = 0x3F  # '?'
    HOLD = 0x21  # '!'  feed hold
    RESUME = 0x7E  # '~'  cycle start / resume
    RESET = 0x18  # ctrl-x soft reset
    SAFETY_DOOR = 0x84
    JOG_CANCEL = 0x85
    FEED_100 = 0x90
    FEED_PLUS_10 = 0x91
    FEED_MINUS_10 = 0x92
    FEED_PLUS_1 = 0x93
    FEED_MINUS_1 = 0x94
    RAPID_100 = 0x95
    RAPID_50 = 0x96
    RAPID_25 = 0x97
    POWER_100 = 0x99
    POWER_PLUS_10 = 0x9A
    POWER_MINUS_10 = 0x9B
    POWER_PLUS_1 = 0x9C
    POWER_MINUS_1 = 0x9D
    #: Toggles the spindle/laser stop override during a hold: never sent blindly (DESIGN).
    SPINDLE_STOP_TOGGLE = 0x9E
    FLOOD_TOGGLE = 0xA0
    MIST_TOGGLE = 0xA1


STATUS = RT.STATUS
HOLD = RT.HOLD
RESUME = RT.RESUME
RESET = RT.RESET
SAFETY_DOOR = RT.SAFETY_DOOR
JOG_CANCEL = RT.JOG_CANCEL

#: ASCII characters that GRBL treats as real-time commands even inside a line or a comment.
#: Every byte >= 0x80 is reserved for real-time commands too.
REALTIME_ASCII = frozenset("?!~\x18")

#: GRBL's line buffer holds 80 bytes including the terminator; a longer line is error:11.
MAX_LINE_CHARS = 79

#: Lines made only of these characters need no comment stripping or checks beyond length.
_PLAIN_RE = re.compile(r"[0-9A-Za-z.+\-=$#]*")

# --------------------------------------------------------------------------- typed messages


class MachineState(StrEnum):
    """States of the machine as laserd reports them (GRBL states plus link states)."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    IDLE = "idle"
    RUN = "run"
    HOLD = "hold"
    JOG = "jog"
    ALARM = "alarm"
    DOOR = "door"
    CHECK = "check"
    HOME = "home"
    SLEEP = "sleep"


#: States in which the machine is (or may soon be) moving: status is polled faster.
MOVING_STATES = frozenset({MachineState.RUN, MachineState.JOG, MachineState.HOME,
                           MachineState.HOLD, MachineState.DOOR})

_STATE_BY_NAME = {
    "Idle": MachineState.IDLE,
    "Run": MachineState.RUN,
    "Hold": MachineState.HOLD,
    "Jog": MachineState.JOG,
    "Alarm": MachineState.ALARM,
    "Door": MachineState.DOOR,
    "Check": MachineState.CHECK,
    "Home": MachineState.HOME,
    "Sleep": MachineState.SLEEP,
}


@dataclass(frozen=True, slots=True)
class Position:
    x: float
    y: float
    z: float

    def __sub__(self, other: Position) -> Position:
        return Position(self.x - other.x, self.y - other.y, self.z - other.z)

    def __add__(self, other: Position) -> Position:
        return Position(self.x + other.x, self.y + other.y, self.z + other.z)

    def as_dict(self) -> dict[str, float]:
        return {"x": self.x, "y": self.y, "z": self.z}


ORIGIN = Position(0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class Overrides:
    """Override values in percent of the programmed feed, rapid rate and spindle/laser power."""

    feed: int = 100
    rapid: int = 100
    power: int = 100

    def as_dict(self) -> dict[str, int]:
        return {"feed": self.feed, "rapid": self.rapid, "power": self.power}


@dataclass(frozen=True, slots=True)
class Ok:
    """``ok``: the oldest line in flight was accepted."""


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """``error:N``: the oldest line in flight was rejected and not executed."""

    code: int
    meaning: str


@dataclass(frozen=True, slots=True)
class AlarmMsg:
    """``ALARM:N``: the controller locked itself; G-code is refused until ``$X``/``$H``."""

    code: int
    meaning: str


@dataclass(frozen=True, slots=True)
class Banner:
    """``Grbl 1.1h ['$' for help]``: the controller (re)started; its buffers are empty."""

    version: str
    raw: str


@dataclass(frozen=True, slots=True)
class StatusReport:
    """One ``<...>`` report exactly as received: absent fields are None."""

    state: MachineState
    substate: int | None
    mpos: Position | None
    wpos: Position | None
    wco: Position | None = None
    planner_free: int | None = None
    rx_free: int | None = None
    line_number: int | None = None
    feed: float | None = None
    spindle: float | None = None
    overrides: Overrides | None = None
    #: ``A:`` letters (S, C, F, M); only meaningful when ``overrides`` is present.
    accessories: str | None = None
    #: ``Pn:`` letters of triggered inputs; absent means none triggered.
    pins: str = ""
    raw: str = ""


@dataclass(frozen=True, slots=True)
class Feedback:
    """A bracketed message kept as text: ``[MSG:..]``, ``[GC:..]``, ``[HLP:..]``, ``[echo:..]``."""

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """``[VER:1.1h.20190825:user string]`` from ``$I``."""

    version: str
    info: str


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """``[OPT:VL,15,128]`` from ``$I``; GRBL 1.1f+ append planner blocks and RX buffer bytes."""

    codes: str
    planner_blocks: int | None
    rx_buffer_bytes: int | None


@dataclass(frozen=True, slots=True)
class Parameter:
    """``[G54:0.000,0.000,0.000]``, ``[TLO:0.000]``, ``[PRB:1.0,2.0,3.0:1]`` from ``$#``."""

    name: str
    values: tuple[float, ...]
    #: Only for ``PRB``: whether the last probe cycle succeeded.
    success: bool | None = None


@dataclass(frozen=True, slots=True)
class SettingLine:
    """``$110=500.000`` (name ``110``) or startup line ``$N0=G54`` (name ``N0``)."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class StartupLineResult:
    """``>G54G20:ok`` or ``>G54G20:error:20``: a startup line ran; not a stream ``ok``."""

    line: str
    error_code: int | None

    @property
    def ok(self) -> bool:
        return self.error_code is None


@dataclass(frozen=True, slots=True)
class Unknown:
    """A line that matches nothing GRBL 1.1 sends (noise, another firmware)."""

    raw: str


Message = (
    Ok
    | ErrorReply
    | AlarmMsg
    | Banner
    | StatusReport
    | Feedback
    | VersionInfo
    | BuildOptions
    | Parameter
    | SettingLine
    | StartupLineResult
    | Unknown
)

OK = Ok()

# --------------------------------------------------------------------------- parsing

_BANNER_RE = re.compile(r"^Grbl(?:HAL)?\s+(\S+)\s+\[.*\]\s*$", re.IGNORECASE)
_SETTING_RE = re.compile(r"^\$(N?\d+)=(.*)$")
_PARAM_NAMES = frozenset({"G54", "G55", "G56", "G57", "G58", "G59", "G28", "G30", "G92",
                          "TLO", "PRB"})


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def _position(text: str) -> Position:
    v = text.split(",")
    # A fourth (A axis) value may follow on some builds; laserd uses X, Y and Z.
    return Position(float(v[0]), float(v[1]), float(v[2]) if len(v) > 2 else 0.0)


class _StatusFields(TypedDict, total=False):
    """The optional fields of a status report, as :func:`parse_status` finds them."""

    substate: int | None
    planner_free: int
    rx_free: int
    line_number: int
    feed: float
    spindle: float
    overrides: Overrides
    accessories: str
    pins: str


def parse_status(line: str) -> StatusReport:
    """Parse ``<Idle|MPos:0.000,0.000,0.000|FS:0,0>``. Raises ValueError when malformed."""
    body = line[1:-1] if line.endswith(">") else line[1:]
    fields = body.split("|")
    name, _, sub = fields[0].partition(":")
    state = _STATE_BY_NAME.get(name)
    if state is None:
        raise ValueError(f"unknown state {name!r}")
    values: _StatusFields = {"substate": int(sub) if sub else None}
    mpos = wpos = wco = None
    for f in fields[1:]:
        key, _, val = f.partition(":")
        if key == "MPos":
            mpos = _position(val)
        elif key == "WPos":
            wpos = _position(val)
        elif key == "WCO":
            wco = _position(val)
        elif key == "Bf":
            planner, _, rx = val.partition(",")
            values["planner_free"] = int(planner)
            values["rx_free"] = int(rx)
        elif key == "Ln":
            values["line_number"] = int(val)
        elif key == "FS":
            feed, _, spindle = val.partition(",")
            values["feed"] = float(feed)
            values["spindle"] = float(spindle)
        elif key == "F":
            values["feed"] = float(val)
        elif key == "Ov":
            ov = [int(float(v)) for v in val.split(",")]
            values["overrides"] = Overrides(ov[0], ov[1], ov[2])
        elif key == "A":
            values["accessories"] = val
        elif key == "Pn":
            values["pins"] = val
        # Unknown fields (newer firmware) are ignored on purpose: reports must keep flowing.
    if mpos is None and wpos is None:
        raise ValueError("status report without a position")
    return StatusReport(state=state, mpos=mpos, wpos=wpos, wco=wco, raw=line, **values)


def _parse_bracket(line: str) -> Message:
    body = line[1:-1] if line.endswith("]") else line[1:]
    kind, sep, text = body.partition(":")
    if not sep:
        return Unknown(line)
    if kind == "VER":
        version, _, info = text.partition(":")
        return VersionInfo(version, info)
    if kind == "OPT":
        parts = text.split(",")
        nums = [int(p) for p in parts[1:] if p.strip().isdigit()]
        return BuildOptions(
            codes=parts[0],
            planner_blocks=nums[0] if len(nums) > 0 else None,
            rx_buffer_bytes=nums[1] if len(nums) > 1 else None,
        )
    if kind in _PARAM_NAMES:
        if kind == "PRB":
            coords, _, flag = text.rpartition(":")
            if coords:
                return Parameter(kind, _floats(coords), flag == "1")
        return Parameter(kind, _floats(text))
    return Feedback(kind, text)


def parse_line(line: str) -> Message:
    """Parse one received line (without its CR/LF) into a typed message.

    Never raises: a malformed line becomes :class:`Unknown`, because noise on the wire must not
    stop the reader.
    """
    if line == "ok":
        return OK
    try:
        first = line[:1]
        if first == "<":
            return parse_status(line)
        if line.startswith("error:"):
            code = int(line[6:])
            return ErrorReply(code, error_meaning(code))
        if line.startswith("ALARM:"):
            code = int(line[6:])
            return AlarmMsg(code, alarm_meaning(code))
        if first == "[":
            return _parse_bracket(line)
        if first == "$":
            m = _SETTING_RE.match(line)
            if m:
                return SettingLine(m.group(1), m.group(2))
            return Unknown(line)
        if first == ">":
            body = line[1:]
            head, sep, tail = body.rpartition(":error:")
            if sep:
                return StartupLineResult(head, int(tail))
            if body.endswith(":ok"):
                return StartupLineResult(body[:-3], None)
            return Unknown(line)
        m = _BANNER_RE.match(line)
        if m:
            return Banner(m.group(1), line)
    except (ValueError, IndexError):
        return Unknown(line)
    return Unknown(line)


# --------------------------------------------------------------------------- sending


def normalise_line(line: str, *, lineno: int | None = None) -> str:
    """Prepare one line for sending: comments and whitespace removed, letters upper-cased.

    GRBL acts on ``?``, ``!``, ``~``, 0x18 and every byte >= 0x80 wherever they appear, even in
    comments, so comments are stripped before sending (``;`` to end of line; ``(...)``, which
    does not nest and ends at the line's end if unclosed). Outside comments such a character
    is refused with :class:`LineRefused`, as is any other control character and a line longer
    than :data:`MAX_LINE_CHARS` after normalising (GRBL would answer ``error:11``, or worse,
    overflow its buffer). An empty result means there is nothing to send.
    """
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    # Fast path: the common machine-generated line with nothing to strip.
    if _PLAIN_RE.fullmatch(line):
        if len(line) > MAX_LINE_CHARS:
            raise LineRefused(
                f"line is {len(line)} characters long; GRBL accepts at most {MAX_LINE_CHARS}",
                line=line, lineno=lineno)
        return line.upper()
    out: list[str] = []
    in_paren = False
    for ch in line:
        if in_paren:
            if ch == ")":
                in_paren = False
            continue
        if ch == "(":
            in_paren = True
            continue
        if ch == ";":
            break
        if ch == " " or ch == "\t":
            continue
        if ch in REALTIME_ASCII or ord(ch) >= 0x80:
            raise LineRefused(
                f"character {ch!r} outside a comment would act as a GRBL real-time command",
                line=line, lineno=lineno)
        if ord(ch) < 0x20 or ch == "\x7f":
            raise LineRefused(f"control character {ch!r} in line", line=line, lineno=lineno)
        out.append(ch)
    text = "".join(out).upper()
    if len(text) > MAX_LINE_CHARS:
        raise LineRefused(
            f"line is {len(text)} characters long after removing comments; GRBL accepts at "
            f"most {MAX_LINE_CHARS}",
            line=line, lineno=lineno)
    return text
