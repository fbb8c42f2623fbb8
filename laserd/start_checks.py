"""The checks before a job's first line: the controller is ready, its power scale matches,
and its overrides are back at 100 %.

Each refuses with the reason a person can act on; none of them arms the laser. The job runner
calls them when a job is submitted and again right before it streams.
"""

from __future__ import annotations

from laserd import errors
from laserd.grbl.link import GrblLink
from laserd.grbl.protocol import MachineState, Overrides
from laserd.job_view import alarm_details

#: How long the controller has to confirm (``Ov:`` in a status report) that feed, power and
#: rapid overrides are back at 100 % before a job's first line; GRBL 1.1 needs well under 1 s.
OVERRIDES_CONFIRM_S = 3.0


def controller_number(link: GrblLink, key: str) -> float | None:
    """A ``$`` setting of the controller as a number; None when unknown or unreadable."""
    raw = link.settings.get(key)
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def check_machine_ready(link: GrblLink) -> None:
    """Refuse (409/503) unless the controller can take a job right now."""
    if not link.connected:
        raise errors.Unavailable("The controller is not connected.")
    state = link.state
    if state == MachineState.ALARM:
        alarm = link.alarm
        raise errors.MachineAlarm(
            "The controller is in alarm"
            + (f" ({alarm.message})" if alarm is not None and alarm.message else "")
            + "; home or unlock it first.",
            details=alarm_details(alarm),
        )
    laser_mode = controller_number(link, "$32")
    if laser_mode != 1:
        raise errors.Conflict(
            "Laser mode is off on the controller ($32=0); set $32=1 first."
            if laser_mode is not None
            else "The controller's laser mode ($32) is unknown; reconnect it.",
            code="laser_mode_off",
        )
    if state == MachineState.DOOR:
        raise errors.MachineBusy(
            "The controller is in safety-door state; resume or reset it first."
        )
    if state not in (MachineState.IDLE, MachineState.CHECK) or link.streaming:
        raise errors.MachineBusy(f"The machine is busy ({state}).")


def check_power_scale(link: GrblLink, expected: float) -> None:
    """Raster G-code is written with S scaled to ``[processing] max_power_s``; it means
    the intended power only if the controller's ``$30`` is that same value. A lower
    ``$30`` would turn 30 % into full power, so a mismatch (or an unknown ``$30``) refuses.
    """
    actual = controller_number(link, "$30")
    if actual != expected:
        raise errors.Conflict(
            f"The controller's $30 is {actual if actual is not None else 'unknown'} but "
            f"images are converted for $30={expected}; set [processing] max_power_s = "
            f"{actual:g} and process the file again, or set $30={expected}."
            if actual is not None
            else "The controller's $30 (power scale) is unknown; reconnect it.",
            code="power_scale_mismatch",
            details={"controller_s_max": actual, "expected_s_max": expected},
        )


async def reset_overrides_to_100(link: GrblLink) -> str | None:
    """Every job starts at 100 % feed, power and rapid, confirmed by the controller.

    GRBL keeps overrides across jobs (only M2/M30 and a reset clear them), so a power
    override left by someone else would scale every S word of this job: a file written
    for S500 would burn at S1000. The laser is not armed yet; not confirmed, no job: this
    returns None once the controller confirms, else why the job must fail.
    """
    seen = await link.reset_overrides(OVERRIDES_CONFIRM_S)
    if seen == Overrides():
        return None
    reported = (
        f"it reports feed {seen.feed} %, power {seen.power} %, rapid {seen.rapid} %"
        if seen is not None
        else "its status reports carry no Ov: field (GRBL 1.1 is needed)"
    )
    return (
        f"the controller did not confirm feed, power and rapid overrides at 100 % within "
        f"{OVERRIDES_CONFIRM_S:g} s ({reported}); nothing was sent and the laser stayed off"
    )
