"""GRBL 1.1 code tables: error codes, alarm codes and ``$`` settings, with their meanings.

GRBL reports problems only as numbers (``error:22``, ``ALARM:3``) and settings only as ``$N=value``,
so every message a person sees about the controller is looked up here. The wording is ours,
written from the meanings documented in gnea/grbl (``doc/csv``); unknown numbers still get a
sentence rather than an exception, because a newer or forked firmware may send codes we do not
know and the link must keep working.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SettingInfo:
    """What a ``$N`` setting is, so the settings page can label raw numbers."""

    name: str
    unit: str
    description: str


#: ``error:N`` → meaning. Sent instead of ``ok`` when a line was rejected and not executed.
ERROR_CODES: dict[int, str] = {
    1: "A G-code word has no letter: every word is a letter followed by a value.",
    2: "A numeric value is missing or its number format is not valid.",
    3: "The '$' system command is not recognised or not supported.",
    4: "A negative value was given where a positive value is required.",
    5: "Homing is not enabled in the settings ($22), so the homing cycle cannot run.",
    6: "The step pulse time ($0) must be at least 3 microseconds.",
    7: "Reading the EEPROM failed; the affected values were restored to their defaults.",
    8: "This '$' command is only accepted while the controller is idle.",
    9: "G-code is locked out while the controller is in alarm or jog state.",
    10: "Soft limits cannot be enabled unless homing is enabled too.",
    11: "The line is longer than the controller's line buffer; it was not executed.",
    12: "The '$' setting value would make the step rate exceed what the controller supports.",
    13: "The safety door is open; the door state was entered.",
    14: "The build info or startup line is longer than the EEPROM allows; it was not stored.",
    15: "The jog target lies outside the machine travel; the jog was ignored.",
    16: "The jog command has no '=' or contains G-code that is not allowed in a jog.",
    17: "Laser mode needs the PWM spindle output, which this build does not have.",
    20: "The block contains an unsupported or invalid G-code command.",
    21: "The block contains more than one command from the same modal group.",
    22: "No feed rate has been set yet for a feed motion.",
    23: "A G-code command in the block needs an integer value.",
    24: "More than one command in the block needs the axis words.",
    25: "A G-code word is repeated in the block.",
    26: "The command (or the current motion mode) needs axis words, but the block has none.",
    27: "The N line number is out of the valid range 1 to 9,999,999.",
    28: "The G-code command is missing a required P or L value word.",
    29: "Only the work coordinate systems G54 to G59 are supported (not G59.1 to G59.3).",
    30: "G53 is only allowed while the G0 or G1 motion mode is active.",
    31: "The block has axis words that no command or current modal state uses.",
    32: "A G2/G3 arc needs at least one axis word in the selected plane.",
    33: "The motion target is invalid (impossible arc, or probe target at the current position).",
    34: "The arc radius is invalid: the arc geometry cannot be computed from it.",
    35: "A G2/G3 arc in offset form needs at least one I/J/K offset word in the selected plane.",
    36: "The block has value words left over that no command uses.",
    37: "G43.1 dynamic tool length offset can only apply to the configured tool length axis.",
    38: "The tool number is greater than the largest supported value.",
}

#: ``ALARM:N`` → meaning. An alarm locks out G-code until ``$X`` or ``$H``.
ALARM_CODES: dict[int, str] = {
    1: "Hard limit triggered: motion stopped at once, machine position is likely lost. "
    "Home again.",
    2: "Soft limit: a motion target lies outside the machine travel. Position is kept; "
    "the alarm may be unlocked.",
    3: "Reset while moving: machine position is likely lost. Home again.",
    4: "Probe fail: the probe was not in the expected state before the probe cycle started.",
    5: "Probe fail: the probe did not touch the workpiece within the programmed travel.",
    6: "Homing fail: the homing cycle was reset.",
    7: "Homing fail: the safety door was opened during homing.",
    8: "Homing fail: pulling off did not clear the limit switch. Raise the pull-off "
    "distance or check the wiring.",
    9: "Homing fail: no limit switch was found within the search distance. Check the max "
    "travel, the pull-off distance and the wiring.",
}

#: ``$N`` → what the setting is. Units as GRBL reports them with ``$13=0`` (millimetres).
SETTING_CODES: dict[int, SettingInfo] = {
    0: SettingInfo("Step pulse time", "µs", "Length of each step pulse; at least 3 µs."),
    1: SettingInfo("Step idle delay", "ms", "Hold time before the steppers are disabled; "
                   "255 keeps them enabled."),
    2: SettingInfo("Step pulse invert", "mask", "Inverts the step signals (bits 00000ZYX)."),
    3: SettingInfo("Step direction invert", "mask", "Inverts the direction signals "
                   "(bits 00000ZYX)."),
    4: SettingInfo("Invert step enable pin", "boolean", "Inverts the stepper enable output."),
    5: SettingInfo("Invert limit pins", "boolean", "Inverts all limit switch inputs."),
    6: SettingInfo("Invert probe pin", "boolean", "Inverts the probe input."),
    10: SettingInfo("Status report options", "mask", "Chooses the position type and whether "
                    "buffer state is reported."),
    11: SettingInfo("Junction deviation", "mm", "How fast consecutive motions are joined; "
                    "lower is slower through corners."),
    12: SettingInfo("Arc tolerance", "mm", "Largest radial error when arcs are split into "
                    "segments."),
    13: SettingInfo("Report in inches", "boolean", "Reports positions and rates in inches."),
    20: SettingInfo("Soft limits enable", "boolean", "Refuses motion beyond the machine "
                    "travel; needs homing."),
    21: SettingInfo("Hard limits enable", "boolean", "Stops at once with an alarm when a "
                    "limit switch trips."),
    22: SettingInfo("Homing cycle enable", "boolean", "Enables the homing cycle ($H)."),
    23: SettingInfo("Homing direction invert", "mask", "Axes (bits 00000ZYX) that home in "
                    "the negative direction."),
    24: SettingInfo("Homing locate feed rate", "mm/min", "Slow feed used to locate the "
                    "switch precisely."),
    25: SettingInfo("Homing search seek rate", "mm/min", "Fast feed used to find the switch."),
    26: SettingInfo("Homing switch debounce delay", "ms", "Pause between homing phases."),
    27: SettingInfo("Homing switch pull-off distance", "mm", "Retract distance after the "
                    "switch triggers."),
    30: SettingInfo("Maximum spindle speed", "RPM", "S value that gives 100 % PWM (full "
                    "laser power)."),
    31: SettingInfo("Minimum spindle speed", "RPM", "S value that gives the lowest PWM."),
    32: SettingInfo("Laser mode enable", "boolean", "Laser mode: motion does not stop on "
                    "S changes; the beam is off when not moving under M4 and during holds."),
    100: SettingInfo("X steps per mm", "step/mm", "X axis travel resolution."),
    101: SettingInfo("Y steps per mm", "step/mm", "Y axis travel resolution."),
    102: SettingInfo("Z steps per mm", "step/mm", "Z axis travel resolution."),
    110: SettingInfo("X maximum rate", "mm/min", "X axis maximum rate, used for G0."),
    111: SettingInfo("Y maximum rate", "mm/min", "Y axis maximum rate, used for G0."),
    112: SettingInfo("Z maximum rate", "mm/min", "Z axis maximum rate, used for G0."),
    120: SettingInfo("X acceleration", "mm/s²", "X axis acceleration."),
    121: SettingInfo("Y acceleration", "mm/s²", "Y axis acceleration."),
    122: SettingInfo("Z acceleration", "mm/s²", "Z axis acceleration."),
    130: SettingInfo("X maximum travel", "mm", "X travel from the homing switch; soft "
                     "limits and homing search use it."),
    131: SettingInfo("Y maximum travel", "mm", "Y travel from the homing switch."),
    132: SettingInfo("Z maximum travel", "mm", "Z travel from the homing switch."),
}

#: ``[OPT:...]`` letters → the compile-time option they stand for.
OPTION_CODES: dict[str, str] = {
    "V": "Variable spindle",
    "N": "Line numbers",
    "M": "Mist coolant",
    "C": "CoreXY",
    "P": "Parking motion",
    "Z": "Homing force origin",
    "H": "Homing single axis",
    "L": "Two limit switches on axis",
    "A": "Feed rate overrides in probe cycles",
    "R": "Classic compatibility mode",
    "*": "Restore all EEPROM command disabled",
    "$": "Restore EEPROM '$' settings command disabled",
    "#": "Restore EEPROM parameter data command disabled",
    "I": "Build info write user string command disabled",
    "E": "Force sync upon EEPROM write disabled",
    "W": "Force sync upon work coordinate offset change disabled",
}


def error_meaning(code: int) -> str:
    """Meaning of ``error:code``; a generic sentence for codes this table does not know."""
    return ERROR_CODES.get(code, f"Unknown GRBL error {code}.")


def alarm_meaning(code: int) -> str:
    """Meaning of ``ALARM:code``; a generic sentence for codes this table does not know."""
    return ALARM_CODES.get(code, f"Unknown GRBL alarm {code}.")


def setting_info(code: int) -> SettingInfo | None:
    """Name, unit and description of ``$code``, or None for settings this table does not know."""
    return SETTING_CODES.get(code)
