"""The console's table of GRBL 1.1 ``$`` commands (laserd.console_policy), one row each."""

from __future__ import annotations

import pytest

from laserd import errors
from laserd.console_policy import INERT, ConsoleKind, check_console_line, classify

K = ConsoleKind


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("$", K.READ), ("$$", K.READ), ("$#", K.READ), ("$G", K.READ), ("$I", K.READ),
        ("$N", K.READ), (" $ g ", K.READ),
        ("$10=1", K.SETTING), ("$130=400.5", K.SETTING), ("$I=my laser", K.SETTING),
        ("$N0=G21", K.STARTUP_BLOCK), ("$n1 = g90", K.STARTUP_BLOCK), ("$N0=", K.STARTUP_BLOCK),
        ("$C", K.CHECK_MODE), ("$X", K.UNLOCK), ("$x", K.UNLOCK), ("$H", K.HOME),
        ("$J=G91X1F100", K.JOG), ("$RST=$", K.RESTORE), ("$RST=#", K.RESTORE),
        ("$RST=*", K.RESTORE), ("$SLP", K.SLEEP), ("$slp", K.SLEEP),
        ("$RST=X", K.UNKNOWN), ("$HX", K.UNKNOWN), ("$N0", K.UNKNOWN), ("$FOO", K.UNKNOWN),
        ("G0 X1", K.GCODE), ("M3 S100", K.GCODE), ("", K.GCODE),
    ],
)  # fmt: skip
def test_every_dollar_command_has_a_class(line: str, kind: ConsoleKind) -> None:
    assert classify(line) is kind
    assert (kind in INERT) is (kind is K.READ)  # only reports pass an open interlock


@pytest.mark.parametrize(
    ("line", "word"),
    [
        ("$N0=M3S1000G1X5F100", "M3"), ("$N0=M4", "M4"), ("$N0=S500", "S500"),
        ("$N0=G0", "G0"), ("$N0=G1F100", "G1"), ("$N0=G2", "G2"), ("$N0=G03", "G03"),
        ("$N0=G38.2Z-5F100", "G38.2"), ("$N0=G28", "G28"), ("$N0=G30", "G30"),
        ("$N0=G28.1", "G28.1"), ("$N1=G10L2P1X5", "G10"), ("$N0=G92X0", "G92"),
        ("$N0=G4P1", "G4"), ("$N0=M8", "M8"), ("$N0=X5", "X5"), ("$N0=G21Y-3", "Y-3"),
        ("$n0 = g21 m3 s1000", "M3"), ("$N0=G21(note)M3", "M3"), ("$N0=G21;M3", None),
        ("$N0=G21$X", "cannot read"),
    ],
)  # fmt: skip
def test_startup_blocks_with_motion_or_laser_words_are_refused(line: str, word: str | None):
    if word is None:  # the comment is not stored code
        assert check_console_line(line) is K.STARTUP_BLOCK
        return
    with pytest.raises(errors.ValidationFailed) as caught:
        check_console_line(line)
    assert word in caught.value.message and "startup block refused" in caught.value.message
    assert caught.value.details[0]["field"] == "line"


@pytest.mark.parametrize(
    "line",
    ["$N0=", "$N0=G21G90G54", "$N1=G20 G17 G40 G49 G80 G91 G91.1 G94 M5 M9 F600 S0 T1",
     "$N0=G59G93", "$N0=G18G19G55G56G57G58"],
)
def test_startup_blocks_that_only_set_modes_may_be_stored(line: str) -> None:
    assert check_console_line(line) is K.STARTUP_BLOCK
