"""The safety supervisor: interlock reflex, gates, laser enable, start button, air and exhaust.

Two paths, kept apart on purpose (DESIGN.md, "Safety is a reflex, not a request"):

* The **reflex** runs in the thread that reports the pin edge (gpiozero's callback thread on
  a Pi, the driving thread with mock pins). It marks the input unsafe, drops the
  laser-enable output and writes one real-time byte through the link's thread-safe writer.
  It logs nothing, takes no lock, awaits nothing, and does not need the event loop, so a
  stalled loop cannot delay it.
* The **record** runs on the event loop afterwards, as events on the bus
  (:mod:`laserd.events`): the ``interlock`` client event, the :class:`Trip` (the job runner
  pauses or fails its job) and a :class:`SafetyAudit` (the audit log records it).

Returning to safe is never a reflex: it is confirmed on the loop after the input has read
safe for its debounce time, and nothing resumes by itself.

Why it is one long module: the interlock reflex is reviewed as one piece. The edge handler,
the laser-enable output, the real-time byte, the gates and the start button share state that
the reflex thread and the loop must agree on; a split would spread that agreement over
several files (tests/unit/test_rooms.py lists it with this reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from laserd.errors import Conflict, InterlockOpen, NotFound, Unavailable
from laserd.events import EventHub
from laserd.hardware import PinFactory, drive_simulated_pin
from laserd.safety.inputs import START_NAME, Interlock, StartButton
from laserd.safety.outputs import LaserEnable, Relay
from laserd.settings import ConfigError, SafetySettings

log = logging.getLogger(__name__)

#: ``realtime(byte) -> bool``: writes one real-time byte straight to the serial line.
RealtimeWriter = Callable[[int], bool]

CYCLE_START = 0x7E  # "~": only ever sent by the job runner, through :meth:`resume`.


@dataclass(frozen=True, slots=True)
class SafetyAudit:
    """An entry for the audit log (actor and target ``safety``), emitted on the bus."""

    event: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Trip:
    """What one trip did; handed to the loop after the reflex, kept as ``last_trip`` and
    emitted on the bus (the job runner pauses or fails its job)."""

    name: str
    kind: str
    action: str
    byte: int
    byte_sent: bool
    at_monotonic: float


class SafetySupervisor:
    """Watches the interlocks and owns every safety-relevant output.

    Collaborators are plain objects (never the app): ``pin_factory`` is a gpiozero pin
    factory (``MockFactory()`` when simulating), ``realtime`` the GRBL link's thread-safe
    real-time writer, ``hub`` the event bus (what it has to say after a reflex goes there).
    ``poll_s`` is the period of the backstop that re-reads every input on the loop, in case
    an edge was never reported (see :meth:`_watch`).
    """

    def __init__(
        self,
        settings: SafetySettings,
        pin_factory: PinFactory | None,
        realtime: RealtimeWriter,
        hub: EventHub,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 0.05,
    ) -> None:
        self._settings = settings
        self._poll_s = poll_s
        self._watcher: asyncio.Task[None] | None = None
        self._realtime = realtime
        self._hub = hub
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._started = False
        now = clock()
        # Monotonic → wall clock, for the ISO timestamps of snapshots and events.
        self._wall_offset_s = time.time() - now
        self._trip_epoch = 0
        self._last_safe_at: float | None = None
        self._start_waiters: set[asyncio.Future[bool]] = set()
        self._exhaust_off: asyncio.TimerHandle | None = None
        self.last_trip: Trip | None = None
        self.interlocks: list[Interlock] = []
        self.start_button: StartButton | None = None
        self.air: Relay | None = None
        self.exhaust: Relay | None = None
        # The laser-enable output first, driven off, before any input can call back.
        self.laser_enable = LaserEnable(settings.laser_enable, pin_factory)
        #: Where the output is not wired, it cannot cut the beam whatever the setting says.
        self.cuts_beam = bool(settings.laser_enable.cuts_beam and self.laser_enable.present)
        try:
            if settings.air_assist is not None:
                self.air = Relay("air assist", settings.air_assist, pin_factory)
            if settings.exhaust is not None:
                self.exhaust = Relay("exhaust", settings.exhaust, pin_factory)
            for cfg in settings.interlocks:
                self.interlocks.append(
                    Interlock(cfg, pin_factory, self, self.cuts_beam, now)
                )
            if settings.start_button is not None:
                self.start_button = StartButton(settings.start_button, pin_factory, self, now)
        except Exception as exc:
            self._close_devices()
            raise ConfigError(f"safety: cannot set up the GPIO pins: {exc}") from exc
        self._by_name: dict[str, Interlock] = {i.name: i for i in self.interlocks}

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Bind to the running loop and settle the initial state of every input.

        Each input that reads safe is re-read after its debounce time and only then counts
        as safe; one that reads unsafe (an open lid, a broken wire) stays unsafe and blocks
        arming until it has been closed for its debounce time.
        """
        self._loop = asyncio.get_running_loop()
        self._started = True
        # Edges from now on schedule their own confirmations; the generation taken here
        # makes sure an input that moved during the wait is left to those.
        settling = [(i, i.generation) for i in self.interlocks if i.reads_safe()]
        if settling:
            await asyncio.sleep(max(i.debounce_s for i, _ in settling))
        for inp, generation in settling:
            self._confirm_safe(inp, generation)
        self._watcher = self._loop.create_task(self._watch(), name="interlock-watch")
        log.info(
            "safety supervisor started: %d interlock(s), laser enable %s (%s), open: %s",
            len(self.interlocks),
            f"GPIO{self.laser_enable.pin_number}" if self.laser_enable.present else "absent",
            self.laser_enable.mode.value,
            ", ".join(self.open_interlocks()) or "none",
        )

    async def close(self) -> None:
        """Disarm, switch every output off, fail pending start waits, close the devices."""
        self._closed = True
        self.laser_enable.lower()  # first, before anything that yields to the loop
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        await self.laser_enable.close()
        if self._exhaust_off is not None:
            self._exhaust_off.cancel()
            self._exhaust_off = None
        for relay in (self.air, self.exhaust):
            if relay is not None:
                relay.set(False)
        for fut in tuple(self._start_waiters):
            if not fut.done():
                fut.set_result(False)
        self._close_devices()
        with contextlib.suppress(TimeoutError):  # the audit entries of the last events
            await asyncio.wait_for(self._hub.drain(), 5)

    def _close_devices(self) -> None:
        for inp in self.interlocks:
            inp.close()
        if self.start_button is not None:
            self.start_button.close()
        for relay in (self.air, self.exhaust):
            if relay is not None:
                relay.close()
        if self.laser_enable.device is not None:
            self.laser_enable.drop()
            self.laser_enable.device.close()
            self.laser_enable.device = None
            self.laser_enable.pin = None

    # ------------------------------------------------------------------ reflex (any thread)

    def _unsafe_edge(self, inp: Interlock) -> None:
        """THE REFLEX. Runs in the edge's thread; order matters, see outputs.py."""
        inp.generation += 1
        was_safe = inp.safe
        inp.safe = False
        self._trip_epoch += 1
        try:
            self.laser_enable.drop()
        except Exception:  # a pin closed under us during shutdown: the byte must still go
            pass
        if not was_safe:
            return  # already unsafe (chatter, or not yet confirmed safe): nothing new to say
        try:
            sent = bool(self._realtime(inp.byte))
        except Exception:
            sent = False
        at = self._clock()
        inp.since = at
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._record_trip, inp, at, sent)
            except RuntimeError:  # loop closed: the record is lost, the reflex was not
                pass

    def _safe_edge(self, inp: Interlock) -> None:
        """An edge towards safe: start (or restart) the debounce, on the loop."""
        inp.generation += 1
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._debounce_safe, inp, inp.generation)
            except RuntimeError:
                pass

    # ------------------------------------------------------------------ record (loop)

    def _record_trip(self, inp: Interlock, at: float, sent: bool) -> None:
        # A second "off" on the loop, serialised with the heartbeat task.
        self.laser_enable.lower()
        trip = Trip(inp.name, inp.kind.value, inp.action, inp.byte, sent, at)
        self.last_trip = trip
        log.warning(
            "interlock %s (%s) opened: laser enable dropped, sent 0x%02X%s, job %s",
            inp.name,
            inp.kind.value,
            inp.byte,
            "" if sent else " (NOT written: link down)",
            inp.action,
        )
        self._publish(inp)
        self._hub.emit(trip)
        self._audit_later(
            "interlock_tripped",
            {
                "name": inp.name,
                "kind": inp.kind.value,
                "action": inp.action,
                "byte": f"0x{inp.byte:02X}",
                "byte_sent": sent,
                "at": self._iso(at),
            },
        )

    def _debounce_safe(self, inp: Interlock, generation: int) -> None:
        if self._closed or inp.generation != generation:
            return
        inp.confirming = generation
        if inp.debounce_s <= 0:
            self._confirm_safe(inp, generation)
        else:
            assert self._loop is not None
            self._loop.call_later(inp.debounce_s, self._confirm_safe, inp, generation)

    def _confirm_safe(self, inp: Interlock, generation: int) -> None:
        """The input stayed safe for its debounce time: it counts as safe from now on."""
        if inp.confirming == generation:
            inp.confirming = None
        if self._closed or inp.generation != generation or inp.safe or not inp.reads_safe():
            return
        inp.safe = True
        if inp.generation != generation:
            # An unsafe edge raced this confirmation; its reflex saw "unsafe" and stayed
            # quiet, which is right only if we do not leave the input marked safe.
            inp.safe = False
            return
        now = self._clock()
        inp.since = now
        self._last_safe_at = now
        log.info("interlock %s (%s) closed", inp.name, inp.kind.value)
        self._publish(inp)
        self._audit_later(
            "interlock_closed",
            {"name": inp.name, "kind": inp.kind.value, "at": self._iso(now)},
        )

    async def _watch(self) -> None:
        """Backstop for edges that were never reported (a driver glitch, a lost interrupt).

        Re-reads every input each ``poll_s``: one that reads unsafe while counted safe gets
        the same reflex as an edge (so do unreadable inputs: fail safe); one that reads safe
        while counted unsafe, with no confirmation under way, starts its debounce. The reflex
        itself never depends on this loop; the poll only covers what the edges missed.
        """
        while not self._closed:
            await asyncio.sleep(self._poll_s)
            for inp in self.interlocks:
                reads_safe = inp.reads_safe()
                if inp.safe and not reads_safe:
                    log.error("interlock %s read open by the poll, no edge seen", inp.name)
                    self._unsafe_edge(inp)
                elif not inp.safe and reads_safe and inp.confirming is None:
                    self._safe_edge(inp)

    def _publish(self, inp: Interlock | StartButton) -> None:
        self._hub.publish("interlock", self._describe(inp, with_pin=False))

    def _audit_later(self, event: str, details: dict[str, Any]) -> None:
        self._hub.emit(SafetyAudit(event, details))

    # ------------------------------------------------------------------ gates

    def all_safe(self) -> bool:
        """Every interlock confirmed safe (and the supervisor running)."""
        return self._started and not self._closed and all(i.safe for i in self.interlocks)

    def open_interlocks(self) -> list[str]:
        if self._closed or not self._started:
            return [i.name for i in self.interlocks] or ["safety supervisor"]
        return [i.name for i in self.interlocks if not i.safe]

    def check_can_start(self) -> None:
        """Gate for job start, and jog or frame with the laser on: 409 ``interlock_open``."""
        if not self.all_safe():
            names = self.open_interlocks()
            raise InterlockOpen(
                f"Interlock open: {', '.join(names)}; close it first.", details={"open": names}
            )

    def check_can_resume(self) -> int:
        """Gate for resume. Returns a token for :meth:`confirm_resumed`.

        Raises 409 ``interlock_open`` while any input is open and 409 ``resume_delay`` when the
        last input became safe less than ``resume_delay_s`` ago (details: seconds left).
        """
        epoch = self._trip_epoch
        self.check_can_start()
        if self._last_safe_at is not None:
            left_s = self._settings.resume_delay_s - (self._clock() - self._last_safe_at)
            if left_s > 0:
                raise Conflict(
                    f"Interlocks closed only just now; resume possible in {left_s:.1f} s.",
                    code="resume_delay",
                    details={"seconds_left": round(left_s, 3)},
                )
        return epoch

    def confirm_resumed(self, token: int) -> None:
        """Call right after writing ``~``: catches a trip that raced the resume.

        When an input opened between :meth:`check_can_resume` and the ``~`` reaching the
        controller, the trip's byte may have arrived *before* the ``~`` and been undone by
        it; the byte is written again so that it comes last, and InterlockOpen is raised.
        """
        if token == self._trip_epoch and self.all_safe():
            return
        self.laser_enable.drop()
        opened = [i for i in self.interlocks if not i.safe] or self.interlocks
        for byte in sorted({i.byte for i in opened}, reverse=True):  # 0x84 before 0x18
            try:
                self._realtime(byte)
            except Exception:
                log.exception("could not repeat the trip byte 0x%02X", byte)
        names = self.open_interlocks()
        raise InterlockOpen(
            f"Interlock opened during resume: {', '.join(names)}.", details={"open": names}
        )

    def resume(self, send_cycle_start: Callable[[], Any]) -> None:
        """Check, let the caller write ``~`` (the job runner's explicit request), confirm."""
        token = self.check_can_resume()
        send_cycle_start()
        self.confirm_resumed(token)

    # ------------------------------------------------------------------ laser enable

    @property
    def armed(self) -> bool:
        return self.laser_enable.armed

    def arm(self) -> None:
        """Allow the laser (job running, or a user-requested laser action). Refused while unsafe."""
        if self._closed:
            raise Unavailable("The safety supervisor is closed.")
        self.check_can_start()
        epoch = self._trip_epoch
        if not self.laser_enable.raise_(lambda: epoch == self._trip_epoch and self.all_safe()):
            self.check_can_start()
            raise InterlockOpen("An interlock opened while arming.")

    def disarm(self) -> None:
        """Laser off: every stop path (complete, cancel, fail, alarm, disconnect, shutdown)."""
        self.laser_enable.lower()

    # ------------------------------------------------------------------ start button

    @property
    def has_start_button(self) -> bool:
        return self.start_button is not None

    async def wait_for_start(self, timeout_s: float | None = None) -> bool:
        """Wait for a debounced press of the physical start button; False on timeout.

        Only presses made while waiting count, and only while every interlock is safe.
        Without a configured button there is nothing to wait for: True at once.
        """
        if self.start_button is None:
            return True
        if self._closed:
            return False
        timeout_s = self.start_button.timeout_s if timeout_s is None else timeout_s
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._start_waiters.add(fut)
        try:
            async with asyncio.timeout(timeout_s):
                return await fut
        except TimeoutError:
            return False
        finally:
            self._start_waiters.discard(fut)

    def _start_edge(self, button: StartButton, generation: int, pressed: bool) -> None:
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._start_debounce, button, generation, pressed)
            except RuntimeError:
                pass

    def _start_debounce(self, button: StartButton, generation: int, pressed: bool) -> None:
        if self._closed or button.generation != generation:
            return
        if not pressed:
            if button.pressed:
                button.pressed = False
                button.since = self._clock()
                self._publish(button)
            return
        assert self._loop is not None
        self._loop.call_later(button.bounce_s, self._start_pressed, button, generation)

    def _start_pressed(self, button: StartButton, generation: int) -> None:
        if self._closed or button.generation != generation or not button.reads_pressed():
            return
        button.pressed = True
        button.since = self._clock()
        self._publish(button)
        if not self._start_waiters:
            return
        if not self.all_safe():
            log.warning(
                "start button refused: interlock open (%s)", ", ".join(self.open_interlocks())
            )
            return
        for fut in tuple(self._start_waiters):
            if not fut.done():
                fut.set_result(True)

    # ------------------------------------------------------------------ air and exhaust

    def set_air(self, on: bool) -> None:
        """Air assist on or off (M7/M8/M9 and the project's setting, decided by the runner)."""
        if self.air is not None and not self._closed:
            self.air.set(on)

    def job_started(self) -> None:
        """Exhaust on for the job (a pending run-on is cancelled)."""
        if self._exhaust_off is not None:
            self._exhaust_off.cancel()
            self._exhaust_off = None
        if self.exhaust is not None and not self._closed:
            self.exhaust.set(True)

    def job_finished(self) -> None:
        """Air assist off now; exhaust off after its ``run_on_s`` (smoke is still in the box)."""
        self.set_air(False)
        exhaust = self.exhaust
        if exhaust is None:
            return
        if self._exhaust_off is not None:
            self._exhaust_off.cancel()
        if exhaust.run_on_s <= 0:
            self._exhaust_off = None
            exhaust.set(False)
        else:
            self._exhaust_off = asyncio.get_running_loop().call_later(
                exhaust.run_on_s, self._exhaust_run_on_done
            )

    def _exhaust_run_on_done(self) -> None:
        self._exhaust_off = None
        if self.exhaust is not None:
            self.exhaust.set(False)

    # ------------------------------------------------------------------ state

    def snapshot(self) -> list[dict[str, Any]]:
        """``GET /interlocks``: every input with its pin, state and since when (ISO, UTC)."""
        items: list[Interlock | StartButton] = list(self.interlocks)
        if self.start_button is not None:
            items.append(self.start_button)
        return [self._describe(i, with_pin=True) for i in items]

    def summary(self) -> dict[str, Any]:
        """The interlock part of ``GET /machine``."""
        return {"ok": self.all_safe(), "open": self.open_interlocks()}

    def _describe(self, item: Interlock | StartButton, *, with_pin: bool) -> dict[str, Any]:
        if isinstance(item, StartButton):
            kind, safe = item.kind, not item.pressed
        else:
            kind, safe = item.kind.value, item.safe
        data: dict[str, Any] = {"name": item.name, "kind": kind}
        if with_pin:
            data["pin"] = item.pin_number
        data["safe"] = safe
        data["since"] = self._iso(item.since)
        return data

    def _iso(self, monotonic_s: float) -> str:
        wall = datetime.fromtimestamp(monotonic_s + self._wall_offset_s, UTC)
        return wall.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    # ------------------------------------------------------------------ simulation

    def drive(self, name: str, safe: bool) -> None:
        """Drive a simulated input (``POST /debug/gpio/{name}``); ``start``: safe=False presses.

        The edge runs through the same callback as a real one, reflex included.
        """
        if name == START_NAME and self.start_button is not None:
            pin, level = self.start_button.pin, self.start_button.pressed_level
            level = level if not safe else not level
        elif name in self._by_name:
            inp = self._by_name[name]
            pin, level = inp.pin, inp.safe_level if safe else not inp.safe_level
        else:
            raise NotFound(f"No simulated input named {name!r}.")
        if not drive_simulated_pin(pin, level):
            raise Conflict("Only simulated (mock) pins can be driven.", code="not_simulated")

    def drive_all_safe(self) -> None:
        """Simulation: close every interlock circuit (mock pins start open, i.e. unsafe)."""
        for inp in self.interlocks:
            self.drive(inp.name, True)
