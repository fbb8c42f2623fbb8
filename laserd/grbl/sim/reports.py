"""Text GRBL 1.1h sends: banner, messages, help, ``$#``, ``$I`` and real-time status reports.

Kept apart from the state machine so the exact wire format — what the link's parser is
written against — is visible in one place.
"""

from __future__ import annotations

from collections.abc import Sequence

from .block_parser import MM_PER_INCH, Offsets

VERSION = "1.1h"
BUILD_DATE = "20190825"
BANNER = f"\r\nGrbl {VERSION} ['$' for help]"
HELP = "[HLP:$$ $# $G $I $N $x=val $Nx=line $J=line $SLP $C $X $H ~ ! ? ctrl-x]"
MSG_UNLOCK_NEEDED = "[MSG:'$H'|'$X' to unlock]"
MSG_UNLOCKED = "[MSG:Caution: Unlocked]"
MSG_RESET_TO_CONTINUE = "[MSG:Reset to continue]"
MSG_CHECK_DOOR = "[MSG:Check Door]"
MSG_ENABLED = "[MSG:Enabled]"
MSG_DISABLED = "[MSG:Disabled]"
MSG_PROGRAM_END = "[MSG:Pgm End]"
MSG_RESTORING = "[MSG:Restoring defaults]"
MSG_SLEEPING = "[MSG:Sleeping]"

# Refresh periods of the rotating status fields (GRBL config.h defaults).
WCO_REFRESH_BUSY = 30
WCO_REFRESH_IDLE = 10
OVR_REFRESH_BUSY = 20
OVR_REFRESH_IDLE = 10


def axes(values: Sequence[float], inches: bool = False) -> str:
    scale = 1.0 / MM_PER_INCH if inches else 1.0
    decimals = 4 if inches else 3
    return ",".join(f"{v * scale:.{decimals}f}" for v in values)


def version_lines(build_info: str, planner_blocks: int, rx_buffer_bytes: int) -> list[str]:
    """``$I``: version with the user's build info, then build options (V: variable spindle)."""
    return [f"[VER:{VERSION}.{BUILD_DATE}:{build_info}]",
            f"[OPT:V,{planner_blocks},{rx_buffer_bytes}]"]  # fmt: skip


def parameter_lines(offsets: Offsets, inches: bool = False) -> list[str]:
    """``$#``: the coordinate systems, G28/G30, G92, tool length offset and last probe."""
    lines = [f"[G{54 + i}:{axes(row, inches)}]" for i, row in enumerate(offsets.wcs)]
    lines.append(f"[G28:{axes(offsets.g28, inches)}]")
    lines.append(f"[G30:{axes(offsets.g30, inches)}]")
    lines.append(f"[G92:{axes(offsets.g92, inches)}]")
    scale = 1.0 / MM_PER_INCH if inches else 1.0
    lines.append(f"[TLO:{offsets.tool_length_mm * scale:.3f}]")
    lines.append(f"[PRB:{axes((0.0, 0.0, 0.0), inches)}:0]")
    return lines


class StatusRotation:
    """GRBL's counters deciding when ``WCO:`` and ``Ov:`` (with ``A:``) ride along a report."""

    def __init__(self) -> None:
        self.wco_countdown = 0
        self.ovr_countdown = 0

    def reset(self) -> None:
        self.wco_countdown = 0
        self.ovr_countdown = 0

    def overrides_changed(self) -> None:
        self.ovr_countdown = 0

    def take_wco(self, busy: bool) -> bool:
        if self.wco_countdown > 0:
            self.wco_countdown -= 1
            return False
        self.wco_countdown = (WCO_REFRESH_BUSY if busy else WCO_REFRESH_IDLE) - 1
        if self.ovr_countdown == 0:
            self.ovr_countdown = 1  # overrides go in the next report, not this one
        return True

    def take_ovr(self, busy: bool) -> bool:
        if self.ovr_countdown > 0:
            self.ovr_countdown -= 1
            return False
        self.ovr_countdown = (OVR_REFRESH_BUSY if busy else OVR_REFRESH_IDLE) - 1
        return True
