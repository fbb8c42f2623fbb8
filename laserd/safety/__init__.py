"""Safety supervisor: GPIO interlocks, laser-enable output, start button, air assist, exhaust.

See :mod:`laserd.safety.supervisor` for the reflex and the gates, and README.md "Wiring a
safe installation" for what the hardware must do on its own.
"""

from laserd.safety.inputs import (
    ACTION_FAIL,
    ACTION_PAUSE,
    SAFETY_DOOR,
    SOFT_RESET,
    Interlock,
    StartButton,
    reflex_for,
)
from laserd.safety.outputs import LaserEnable, Relay
from laserd.safety.supervisor import CYCLE_START, SafetyAudit, SafetySupervisor, Trip

__all__ = [
    "ACTION_FAIL",
    "ACTION_PAUSE",
    "CYCLE_START",
    "SAFETY_DOOR",
    "SOFT_RESET",
    "Interlock",
    "LaserEnable",
    "Relay",
    "SafetyAudit",
    "SafetySupervisor",
    "StartButton",
    "Trip",
    "reflex_for",
]
