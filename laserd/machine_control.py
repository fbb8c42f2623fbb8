"""Machine control outside jobs: home, unlock, reset, jog, frame, overrides, console, settings;
and the ``machine`` snapshot the API shows (``GET /machine`` and the WebSocket event).

The link (:mod:`laserd.grbl.link`) reports typed changes on the bus; :class:`Machine` composes
them with the interlocks, the active job and framing into the API's shape and publishes it.

Every motion here is refused while a job is active (409 ``machine_busy``), while the
controller is disconnected (503) and — where it needs it — in alarm (409 ``machine_alarm``).
Framing with the laser on goes through the same interlock gate as a job and arms the
laser-enable output only for the duration of the frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any

from laserd import errors
from laserd.auth.principal import Principal
from laserd.console_policy import INERT, check_console_line
from laserd.events import EventHub
from laserd.grbl.controller import ControllerChanged
from laserd.grbl.link import GrblLink
from laserd.grbl.protocol import RT, MachineState, Position
from laserd.job_view import STEERABLE, alarm_details
from laserd.machine_use import Claim, MachineUse
from laserd.start_checks import controller_number

if TYPE_CHECKING:  # for the types only: no new import at run time
    from laserd.jobs import JobRunner
    from laserd.safety import SafetySupervisor

log = logging.getLogger(__name__)

#: Framing with the beam on is for aiming, never for marking: the power is capped here.
FRAME_MAX_POWER_PCT = 10.0
SETTING_KEY = re.compile(r"^\$(\d{1,3})$")


def _fmt(value: float) -> str:
    """Trimmed decimal for G-code words (``12.5``, ``3``, ``-0.125``)."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _xyz(pos: Position) -> dict[str, float]:
    return {"x": pos.x, "y": pos.y, "z": pos.z}


def override_bytes(
    target: int, *, reset: int, plus10: int, minus10: int, plus1: int, minus1: int
) -> list[int]:
    """Real-time bytes that set an override to ``target`` percent.

    GRBL only knows relative steps and a reset to 100 %; starting from the reset makes the
    result exact whatever the current value (which may be stale by one status report).
    """
    out = [reset]
    delta = target - 100
    tens, ones = divmod(abs(delta), 10)
    step10, step1 = (plus10, plus1) if delta > 0 else (minus10, minus1)
    out += [step10] * tens + [step1] * ones
    return out


class Machine:
    """Manual control of the machine; plain collaborators, never the app."""

    def __init__(
        self,
        *,
        link: GrblLink,
        safety: SafetySupervisor,
        jobs: JobRunner,
        hub: EventHub,
        bed_mm: tuple[float, float] | None = None,
    ) -> None:
        self._link = link
        self._hub = hub
        #: The bed's size (``[machine] bed_mm``), for the UI's bed view of placed files.
        self._bed_mm = bed_mm
        self._safety = safety
        self._jobs = jobs
        #: The job runner's owner of "the machine is in use" (laserd.machine_use): every use
        #: below takes a claim right after its checks, with no await in between.
        self.use: MachineUse = jobs.use
        self._frame_task: asyncio.Task[None] | None = None
        hub.on(ControllerChanged, self._on_controller)

    # ------------------------------------------------------------------ state

    def close(self) -> None:
        self._hub.off(ControllerChanged, self._on_controller)

    def _on_controller(self, change: ControllerChanged) -> None:
        """Every change the link reports (status 5-10 times a second) goes out to clients."""
        self._hub.publish("machine", self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        """``GET /machine`` (API.md): the controller, the interlocks and the active job."""
        link = self._link
        connected = link.connected
        status = link.status if connected else None
        open_names = self._safety.open_interlocks()
        return {
            "state": link.state,
            "connected": connected,
            "port": link.port,
            "firmware": link.firmware,
            "mpos": _xyz(status.mpos) if status else None,
            "wpos": _xyz(status.wpos) if status else None,
            "feed": status.feed if status else None,
            "power": status.power if status else None,
            "overrides": {
                "feed": status.overrides.feed,
                "rapid": status.overrides.rapid,
                "power": status.overrides.power,
            } if status else None,
            "buffer": {"planner": status.planner_free, "rx": status.rx_free} if status else None,
            "alarm": alarm_details(link.alarm),
            "interlocks": {"ok": not open_names, "open": open_names},
            "job": self._jobs.snapshot(),
            "framing": self.framing,
            "bed_mm": {"x": self._bed_mm[0], "y": self._bed_mm[1]} if self._bed_mm else None,
        }

    @property
    def framing(self) -> bool:
        return self._frame_task is not None and not self._frame_task.done()

    # ------------------------------------------------------------------ gates

    def _require_connected(self) -> None:
        if not self._link.connected:
            raise errors.Unavailable("The controller is not connected.")

    def _require_no_job(self) -> None:
        if self._jobs.active is not None:
            raise errors.MachineBusy("A job is active; pause or cancel it first.")
        if self.framing:
            raise errors.MachineBusy("The machine is framing; wait or cancel the jog.")

    def _require_not_alarm(self) -> None:
        if self._link.state == MachineState.ALARM:
            alarm = self._link.alarm
            raise errors.MachineAlarm(
                f"The controller is in alarm ({alarm.message if alarm else 'alarm'}); "
                "home or unlock it first.",
                details=alarm_details(alarm),
            )

    def _require_no_estop(self) -> None:
        """No motion at all while an E-stop is pressed (not only no laser)."""
        pressed = [i.name for i in self._safety.interlocks if i.kind == "estop" and not i.safe]
        if pressed:
            raise errors.InterlockOpen(
                f"E-stop pressed ({', '.join(pressed)}); release it first.",
                details={"open": pressed},
            )

    def _require_idle_or_jog(self) -> None:
        state = self._link.state
        if state not in (MachineState.IDLE, MachineState.JOG):
            raise errors.MachineBusy(f"The machine is busy ({state}).")

    # ------------------------------------------------------------------ commands

    async def home(self) -> list[str]:
        self._require_connected()
        self._require_no_job()
        self._require_no_estop()
        if self._link.state not in (MachineState.IDLE, MachineState.ALARM):
            raise errors.MachineBusy(f"The machine is busy ({self._link.state}).")
        with self.use.using("homing"):
            return await self._link.command("$H", timeout_s=180)

    async def unlock(self) -> list[str]:
        """``$X``: only ever on a person's request (this endpoint), never by laserd itself."""
        self._require_connected()
        self._require_no_job()
        with self.use.using("unlocking"):
            return await self._link.command("$X", timeout_s=10)

    async def reset(self) -> None:
        self._require_connected()
        # Refused before anything is touched: disarming first dropped a running job's laser
        # enable on a request that then answered 409 (and anyone with the user role could).
        if self._jobs.active is not None:
            raise errors.MachineBusy("A job is active; cancel it (that resets the controller).")
        self._safety.disarm()
        await self._link.reset()

    async def connect(self) -> None:
        await self._link.connect()

    async def disconnect(self) -> None:
        self._require_no_job()
        self._safety.disarm()
        await self._link.disconnect()

    async def jog(
        self, *, x: float | None, y: float | None, z: float | None, feed: float, relative: bool
    ) -> list[str]:
        self._require_connected()
        self._require_no_job()
        self._require_no_estop()
        self._require_not_alarm()
        self._require_idle_or_jog()
        words = ["$J=", "G91" if relative else "G90", "G21"]
        for axis, value in (("X", x), ("Y", y), ("Z", z)):
            if value is not None:
                words.append(f"{axis}{_fmt(value)}")
        if len(words) == 3:
            raise errors.ValidationFailed.field("x", "give at least one of x, y, z")
        words.append(f"F{_fmt(feed)}")
        # Shared: jog commands may queue behind each other (a held arrow key), nothing else.
        with self.use.using("jogging", shared=True):
            return await self._link.command("".join(words), timeout_s=10)

    def jog_cancel(self) -> None:
        self._require_connected()
        self._link.realtime(RT.JOG_CANCEL)

    async def frame(
        self, *, bounds: dict[str, float], power_pct: float, feed_mm_min: float
    ) -> None:
        """Trace the bounding box; the laser stays off unless a (capped) power is asked for."""
        self._require_connected()
        self._require_no_job()
        self._require_no_estop()
        self._require_not_alarm()
        self._require_idle_or_jog()
        if power_pct > FRAME_MAX_POWER_PCT:
            raise errors.ValidationFailed.field(
                "power_pct", f"at most {FRAME_MAX_POWER_PCT:g} % for framing"
            )
        xmin, xmax, ymin, ymax = (bounds[k] for k in ("xmin", "xmax", "ymin", "ymax"))
        s_value = 0
        if power_pct > 0:
            # Scale by the controller's own $30, so the cap holds whatever the config says.
            s_max = controller_number(self._link, "$30")
            if s_max is None or s_max <= 0:
                raise errors.Conflict(
                    "The controller's $30 (power scale) is unknown; frame with the laser off.",
                    code="power_scale_unknown",
                )
            s_value = max(1, round(s_max * power_pct / 100))
        lines = ["G90", "G21", f"G0X{_fmt(xmin)}Y{_fmt(ymin)}"]
        if s_value > 0:
            self._safety.check_can_start()
            lines.append(f"M3S{s_value}")
        else:
            lines.append("M5S0")
        lines += [
            f"G1X{_fmt(xmax)}Y{_fmt(ymin)}F{_fmt(feed_mm_min)}",
            f"G1X{_fmt(xmax)}Y{_fmt(ymax)}",
            f"G1X{_fmt(xmin)}Y{_fmt(ymax)}",
            f"G1X{_fmt(xmin)}Y{_fmt(ymin)}",
            "M5S0",
        ]
        claim = self.use.claim("framing")
        try:
            if s_value > 0:
                self._safety.arm()
            self._frame_task = asyncio.get_running_loop().create_task(
                self._run_frame(lines, claim), name="frame"
            )
        except BaseException:
            self._safety.disarm()
            self.use.release(claim)
            raise

    async def _run_frame(self, lines: list[str], claim: Claim) -> None:
        try:
            await self._link.stream(enumerate(lines, 1))
            while True:
                status = await self._link.wait_for_status(lambda s: True, 5.0)
                if status.state != MachineState.RUN:
                    break
                await asyncio.sleep(0.1)
        except Exception as exc:  # a trip, an alarm or an unplug ends the frame
            log.warning("framing stopped: %s", exc)
            with contextlib.suppress(Exception):
                if self._link.connected and self._link.state == MachineState.HOLD:
                    await self._link.cancel(hold_timeout_s=3)
        finally:
            self._safety.disarm()
            self.use.release(claim)

    def overrides(
        self, who: Principal, *, feed: int | None, power: int | None, rapid: int | None
    ) -> None:
        """Overrides belong to a running (or paused) job and end with it.

        Outside a job they are refused (409 ``no_job_running``): one set while idle would
        scale the next job — anyone's — the moment it starts. Every job resets them to 100 %
        before its first line and again when it ends. During a job only its owner or an
        admin may steer it (API.md: a user controls the machine while no one else's job runs).
        """
        self._require_connected()
        active = self._jobs.active
        if active is None or active.state not in STEERABLE:
            raise errors.Conflict(
                "Overrides apply to a running job only; every job starts at 100 %.",
                code="no_job_running",
            )
        if not who.is_admin and active.row.get("user_id") != who.user_id:
            raise errors.MachineBusy(
                "Another user's job is running; its owner or an admin may adjust it."
            )
        seq: list[int] = []
        if feed is not None:
            seq += override_bytes(
                feed,
                reset=RT.FEED_100,
                plus10=RT.FEED_PLUS_10,
                minus10=RT.FEED_MINUS_10,
                plus1=RT.FEED_PLUS_1,
                minus1=RT.FEED_MINUS_1,
            )
        if power is not None:
            seq += override_bytes(
                power,
                reset=RT.POWER_100,
                plus10=RT.POWER_PLUS_10,
                minus10=RT.POWER_MINUS_10,
                plus1=RT.POWER_PLUS_1,
                minus1=RT.POWER_MINUS_1,
            )
        if rapid is not None:
            seq.append({100: RT.RAPID_100, 50: RT.RAPID_50, 25: RT.RAPID_25}[rapid])
        for byte in seq:
            if not self._link.realtime(byte):
                raise errors.Unavailable("The controller is not connected.")

    async def console(self, line: str) -> list[str]:
        """One raw line, classified by :mod:`laserd.console_policy`. While any interlock is
        open only reads pass (``$$ $# $G $I $N $``): a G-code line could switch the beam on
        (M3 S…) or move, ``$X``/``$H``/``$C``/``$RST=``/``$SLP``/settings change or reset the
        controller, and the console must not be a way around the gates that jobs, jogs and
        frames obey. A startup block that is more than modes is refused always (422)."""
        self._require_connected()
        if self._jobs.active is not None:
            raise errors.MachineBusy("A job is streaming; the console waits until it ends.")
        if check_console_line(line) not in INERT:
            self._safety.check_can_start()
        with self.use.using("console"):
            return await self._link.command(line, timeout_s=30)

    def controller_settings(self) -> dict[str, float]:
        self._require_connected()
        out: dict[str, float] = {}
        for key, raw in self._link.settings.items():
            try:
                value = float(raw)
            except ValueError:
                continue
            out[key] = int(value) if value.is_integer() else value
        return out

    async def write_settings(self, values: dict[str, float]) -> dict[str, float]:
        self._require_connected()
        self._require_no_job()
        self._require_idle_or_jog()
        for key in values:
            if not SETTING_KEY.match(key):
                raise errors.ValidationFailed.field(key, "settings are named like $30")
        # As through the console: no settings writes while an interlock is open.
        self._safety.check_can_start()
        with self.use.using("writing settings"):
            for key, value in values.items():  # in the caller's order: $22 before $20, say
                await self._link.command(f"{key}={_fmt(float(value))}", timeout_s=10)
        return self.controller_settings()
