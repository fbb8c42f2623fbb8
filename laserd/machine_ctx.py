"""Cleanup contexts of the machine side: safety supervisor, GRBL link, job runner.

Order matters and is fixed in ``laserd.app.CONTEXTS``: the safety supervisor comes first (the
laser-enable output is driven off before the controller is even opened), then the link (and
the simulator behind it), then the job runner and machine control. Exit runs in reverse: the
job runner stops a running job and the laser first, then the link closes, then the safety
outputs are released.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from laserd.events import EventHub
from laserd.grbl.controller import SerialLine
from laserd.grbl.link import GrblLink
from laserd.jobs import JobRunner
from laserd.keys import (
    AUDIT,
    DB,
    HARDWARE,
    HUB,
    JOBS,
    LIBRARY,
    LINK,
    MACHINE,
    SAFETY,
    SETTINGS,
    SIMULATOR,
)
from laserd.machine_control import Machine
from laserd.safety import SafetyAudit, SafetySupervisor
from laserd.settings import ConfigError

log = logging.getLogger(__name__)


class RealtimeWriter:
    """The safety reflex's path to the serial line, bound to the link once it exists.

    The supervisor is built before the link (so its outputs are safe first); until the link
    is there, there is no controller to stop and the write reports False.
    """

    __slots__ = ("link",)

    def __init__(self) -> None:
        self.link: GrblLink | None = None

    def __call__(self, byte: int) -> bool:
        link = self.link
        return link.realtime(byte) if link is not None else False


_REALTIME = web.AppKey("realtime_writer", RealtimeWriter)


async def safety_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, hardware = app[SETTINGS], app[HARDWARE]
    writer = RealtimeWriter()
    app[_REALTIME] = writer

    async def record(entry: SafetyAudit) -> None:
        # Looked up at the time of the event: the supervisor starts before the audit log
        # exists (its outputs must be safe before anything else) and may outlive it at exit.
        audit = app.get(AUDIT)
        if audit is not None:
            await audit.record(
                entry.event, details=entry.details, actor_name="safety", target="safety"
            )

    app[HUB].on(SafetyAudit, record)
    try:
        safety = SafetySupervisor(
            settings.safety, hardware.pin_factory, writer, app[HUB]
        )
    except ConfigError:
        raise
    except Exception as exc:  # no GPIO on this machine, pin busy, no permission ...
        raise ConfigError(
            f"safety: cannot open the GPIO pins ({exc}). On a machine without GPIO, "
            "set [machine] simulate = true."
        ) from exc
    app[SAFETY] = safety
    await safety.start()
    if hardware.simulated:
        # Mock pins start open (unsafe); a simulated machine starts with its circuits closed.
        safety.drive_all_safe()
    try:
        yield
    finally:
        await safety.close()
        app[HUB].off(SafetyAudit, record)


class ConsoleFeed:
    """The admins' view of the wire (the ``log`` WebSocket event): console traffic only
    (:class:`SerialLine`), not the status reports and streamed job lines that would flood
    it (those are other kinds of :class:`~laserd.grbl.controller.WireLine`)."""

    admins = frozenset({"admin"})

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub

    def __call__(self, event: SerialLine) -> None:
        self._hub.publish(
            "log", {"direction": event.direction, "line": event.line}, audience=self.admins
        )


async def link_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, hardware = app[SETTINGS], app[HARDWARE]
    machine = settings.machine
    sim = hardware.simulator
    port = hardware.serial_port
    if sim is not None:
        port = sim.start()
        app[SIMULATOR] = sim
        log.info("simulated GRBL controller on %s", port)
    link = GrblLink(
        port,
        baudrate=machine.baudrate,
        rx_buffer_bytes=machine.rx_buffer_bytes,
        status_hz_idle=machine.status_hz_idle,
        status_hz_running=machine.status_hz_running,
        reconnect_s=machine.reconnect_s,
        hub=app[HUB],
        autoconnect=machine.autoconnect and bool(port),
    )
    app[LINK] = link
    app[_REALTIME].link = link
    feed = ConsoleFeed(app[HUB])
    app[HUB].on(SerialLine, feed)
    await link.start()
    try:
        yield
    finally:
        app[HUB].off(SerialLine, feed)
        app[_REALTIME].link = None
        await link.close()
        if sim is not None:
            sim.stop()


async def jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    jobs = JobRunner(
        conn=app[DB],
        link=app[LINK],
        safety=app[SAFETY],
        hub=app[HUB],
        settings=settings,
        audit=app.get(AUDIT),
        files=app[LIBRARY],
    )
    await jobs.start()
    app[JOBS] = jobs
    machine = Machine(
        link=app[LINK],
        safety=app[SAFETY],
        jobs=jobs,
        hub=app[HUB],
        bed_mm=(settings.machine.bed_mm.x, settings.machine.bed_mm.y),
    )
    app[MACHINE] = machine
    try:
        yield
    finally:
        machine.close()
        await jobs.close()
        app[SAFETY].disarm()
