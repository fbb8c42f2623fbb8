"""What of GRBL 1.1's G-code dialect a laserd job may contain, and why the rest is refused.

The choices, in one place:

* Motion ``G0 G1 G2 G3`` (arcs in the XY plane, IJK or R form), dwell ``G4 P<s>``, units
  ``G20 G21``, distance ``G90 G91`` (and ``G91.1``, GRBL's only arc mode), ``G17``, ``G94``,
  work coordinate systems ``G54``–``G59``, and the harmless cancels ``G40 G49 G61 G80``.
* ``M3 M4 M5`` (laser), ``M7 M8 M9`` (air/coolant), ``M2 M30`` (program end; GRBL resets the
  modal state and switches the laser off). Words ``F S X Y Z I J K R P T``; ``N`` line numbers
  are accepted and dropped from the streamed copy (GRBL ignores them; they only cost buffer).
* Refused, because the analysis could no longer tell where the head goes or because they change
  the machine rather than run a job: ``G10`` (writes offsets), ``G28 G30`` (move to stored
  positions), ``G28.1 G30.1 G92 G92.1`` (offsets), ``G53`` (machine coordinates), ``G38.x``
  (probing), ``G43.1`` (tool length), ``G93`` (inverse-time feed), ``G18 G19`` (other arc
  planes), ``M0 M1`` (program pause: resuming is a person's decision, made through the API),
  ``M56``; letters ``A B C`` (axes GRBL does not have), ``L``, ``/`` block delete.
* ``$`` system commands: only ``$H`` (homing, a common first line) is allowed. ``$X`` (unlock)
  is a person's decision, ``$J=`` jogging and settings writes have no place inside a job.
* A line alone holding ``%`` (a CNC program delimiter that GRBL would answer with an error)
  is dropped.
"""

from __future__ import annotations

#: GRBL's serial line buffer is 80 bytes including the terminating NUL.
MAX_LINE_CHARS = 79

#: Refusals stop after this many; one more line says that the list was cut short.
MAX_ISSUES = 25

#: A line whose code (comments removed) is longer than this is refused without being kept in
#: memory. Comments of any length are dropped as they are read.
MAX_RAW_LINE_BYTES = 64 * 1024

ALLOWED_DOLLAR = frozenset({b"$H"})

#: G codes as tenths (G91.1 -> 911) mapped to their modal group.
G_GROUPS: dict[int, str] = {
    0: "motion",
    10: "motion",
    20: "motion",
    30: "motion",
    800: "motion",
    40: "non_modal",
    170: "plane",
    200: "units",
    210: "units",
    400: "cutter",
    490: "tool_length",
    540: "wcs",
    550: "wcs",
    560: "wcs",
    570: "wcs",
    580: "wcs",
    590: "wcs",
    610: "path",
    900: "distance",
    910: "distance",
    911: "arc_distance",
    940: "feed_mode",
}

G_REFUSED: dict[int, str] = {
    100: "G10 writes coordinate offsets into the controller",
    180: "G18 selects the XZ plane; only XY arcs (G17) are supported",
    190: "G19 selects the YZ plane; only XY arcs (G17) are supported",
    280: "G28 moves to a stored position the analysis cannot know",
    281: "G28.1 stores a position in the controller",
    300: "G30 moves to a stored position the analysis cannot know",
    301: "G30.1 stores a position in the controller",
    382: "G38.2 probing is not for laser jobs",
    383: "G38.3 probing is not for laser jobs",
    384: "G38.4 probing is not for laser jobs",
    385: "G38.5 probing is not for laser jobs",
    431: "G43.1 tool length offsets are not for laser jobs",
    530: "G53 moves in machine coordinates the analysis cannot check",
    920: "G92 shifts the coordinate system, so the bounds could not be checked",
    921: "G92.1 resets coordinate offsets in the controller",
    930: "G93 inverse-time feed is not supported",
}

M_GROUPS: dict[int, str] = {
    2: "stopping",
    30: "stopping",
    3: "spindle",
    4: "spindle",
    5: "spindle",
    7: "coolant",
    8: "coolant",
    9: "coolant",
}

M_REFUSED: dict[int, str] = {
    0: "M0 pauses the program; pause a job through laserd instead",
    1: "M1 pauses the program; pause a job through laserd instead",
    56: "M56 parking override is not for laser jobs",
}

#: Value words GRBL accepts (G and M are commands, N is dropped).
VALUE_LETTERS = frozenset(b"FSXYZIJKRPT")

LETTER_REFUSED: dict[int, str] = {
    ord("A"): "GRBL has no A axis",
    ord("B"): "GRBL has no B axis",
    ord("C"): "GRBL has no C axis",
    ord("L"): "L words are only used by G10, which is not allowed",
}

REALTIME_CHARS = frozenset(b"!~?")
