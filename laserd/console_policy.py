"""What the admin console may send: every GRBL 1.1 ``$`` command classified on purpose.

The console used to treat every ``$`` line except ``$H`` and ``$J=`` as inert. Several are not:
a startup block stored with ``$N0=M3S1000G1X5F100`` runs by itself after every reset and every
homing cycle — which any user can trigger — so it would fire and move the laser with no job, no
gate and no laser-enable decision by laserd. ``$RST=``, ``$SLP`` and ``$C`` reset or re-power
the controller, ``$X`` lifts its alarm lock.

One table, read from GRBL 1.1's command reference (doc/markdown/commands.md of gnea/grbl):

========================  =================  ===========================================
line                      class              while an interlock is open
========================  =================  ===========================================
``$`` ``$$`` ``$#``       read               allowed (reports only, change nothing)
``$G`` ``$I`` ``$N``
``$x=val`` ``$I=text``    setting            refused (EEPROM write; ``$30``/``$32`` change
                                             what S means)
``$Nx=line``              startup block      refused; and *always* refused when the block
                                             holds anything but modal words (see below)
``$C``                    check mode         refused (leaving it soft-resets the board,
                                             which runs the startup blocks)
``$X``                    unlock             refused (lifts the alarm lock)
``$H``                    homing             refused (motion; runs the startup blocks)
``$J=line``               jog                refused (motion)
``$RST=$`` ``#`` ``*``    restore            refused (wipes EEPROM, then resets)
``$SLP``                  sleep              refused (de-powers; leaves the board in alarm)
other ``$…``              unknown            refused (GRBL answers error:3 anyway)
anything else             G-code             refused (may move or fire: M3 S…, G1 …)
========================  =================  ===========================================

A stored startup block may only set modes: ``G17``-``G19``, ``G20``/``G21``, ``G40``,
``G49``, ``G54``-``G59``, ``G80``, ``G90``/``G91``, ``G91.1``, ``G93``/``G94``, ``M5``, ``M9``,
``F``, ``S0``, ``T`` and ``N``. Everything else is refused (422) whatever the interlocks say:
motion (``G0``-``G3``, ``G38.x``, ``G28``/``G30``, any axis word), the beam (``M3``/``M4``,
``S`` above 0), dwell, coolant, and the EEPROM writes GRBL's documentation warns against
storing (``G10``, ``G28.1``, ``G30.1``). Clearing a block (``$N0=``) is a settings write like
any other.
"""

from __future__ import annotations

import re
from enum import StrEnum

from laserd import errors


class ConsoleKind(StrEnum):
    READ = "read"
    SETTING = "setting"
    STARTUP_BLOCK = "startup_block"
    CHECK_MODE = "check_mode"
    UNLOCK = "unlock"
    HOME = "home"
    JOG = "jog"
    RESTORE = "restore"
    SLEEP = "sleep"
    UNKNOWN = "unknown"
    GCODE = "gcode"


#: The only kind that passes while an interlock is open.
INERT = frozenset({ConsoleKind.READ})

_READS = frozenset({"$", "$$", "$#", "$G", "$I", "$N"})
_SETTING = re.compile(r"^\$(\d+|I)=")
_STARTUP = re.compile(r"^\$N\d+=")
_RESTORE = re.compile(r"^\$RST=[$#*]$")
_COMMENT = re.compile(r"\([^)]*\)|;.*$")
_WORD = re.compile(r"([A-Z])([-+]?(?:\d+\.?\d*|\.\d+))")

#: Modal G codes a startup block may set, in tenths (G91.1 → 911).
_MODAL_G = frozenset(
    {170, 180, 190, 200, 210, 400, 490, *range(540, 600, 10), 800, 900, 910, 911, 930, 940}
)
_MODAL_M = frozenset({50, 90})  # M5 laser off, M9 coolant off
_WHY = {
    "G0": "moves", "G1": "moves", "G2": "moves", "G3": "moves", "G38": "moves (probing)",
    "G28": "moves", "G30": "moves", "G4": "dwells", "G10": "writes EEPROM at every start",
    "G53": "moves", "G92": "shifts the coordinates", "M3": "switches the laser on",
    "M4": "switches the laser on", "M7": "switches coolant/air on", "M8": "switches coolant/air on",
}  # fmt: skip
_ALLOWED = (
    "G17-G19, G20/G21, G40, G49, G54-G59, G80, G90/G91, G91.1, G93/G94, M5, M9, F, S0, T, N"
)


def _canonical(line: str) -> str:
    """What GRBL sees: spaces dropped and letters upper-cased (its pre-parser does both)."""
    return "".join(line.split()).upper()


def classify(line: str) -> ConsoleKind:
    text = _canonical(line)
    if not text.startswith("$"):
        return ConsoleKind.GCODE
    if text in _READS:
        return ConsoleKind.READ
    if text.startswith("$J="):
        return ConsoleKind.JOG
    if _STARTUP.match(text):
        return ConsoleKind.STARTUP_BLOCK
    if _SETTING.match(text):
        return ConsoleKind.SETTING
    if _RESTORE.match(text):
        return ConsoleKind.RESTORE
    return {
        "$C": ConsoleKind.CHECK_MODE,
        "$X": ConsoleKind.UNLOCK,
        "$H": ConsoleKind.HOME,
        "$SLP": ConsoleKind.SLEEP,
    }.get(text, ConsoleKind.UNKNOWN)


def startup_block_problem(block: str) -> str | None:
    """Why a startup block must not be stored, or None when it only sets modes."""
    code = _COMMENT.sub("", _canonical(block))
    pos = 0
    for match in _WORD.finditer(code):
        if match.start() != pos:
            break
        pos = match.end()
        letter, value = match.group(1), float(match.group(2))
        word = f"{letter}{match.group(2)}"
        tenths = round(value * 10)
        if letter == "G" and tenths in _MODAL_G:
            continue
        if letter == "M" and tenths in _MODAL_M:
            continue
        if letter in "FTN" and value >= 0:
            continue
        if letter == "S" and value == 0:
            continue
        key = f"{letter}{int(value)}" if letter in "GM" else letter
        if letter == "S":
            why = "sets a laser power"
        elif letter in "XYZABCIJKR":
            why = "is an axis word: with the default G0 mode it moves"
        else:
            why = _WHY.get(key, "is not a mode setting")
        return f"{word} {why}"
    if pos != len(code):
        return f"cannot read {code[pos:pos + 20]!r} as G-code words"
    return None


def check_console_line(line: str) -> ConsoleKind:
    """Classify a console line; refuse (422) a startup block that is more than modes."""
    kind = classify(line)
    if kind is ConsoleKind.STARTUP_BLOCK:
        block = _canonical(line).split("=", 1)[1]
        problem = startup_block_problem(block)
        if problem is not None:
            raise errors.ValidationFailed.field(
                "line",
                f"startup block refused: {problem}. GRBL runs a stored block by itself after "
                f"every reset and homing cycle, outside any job; only modes may be stored "
                f"({_ALLOWED}).",
            )
    return kind
