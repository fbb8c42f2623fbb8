"""What laserd knows of the controller: its state, last status, settings, identity and alarm.

:class:`ControllerState` is fed the parsed messages the link receives and answers what the
controller is doing now. It reports what changed as typed values (:class:`ControllerChanged`,
:class:`SettingsChanged`, :class:`WireLine`), which the link emits on the event bus
(:mod:`laserd.events`); the shape the API shows (``GET /machine``) is composed above this
layer, by :class:`laserd.machine_control.Machine`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from laserd.grbl.errors import LinkDown
from laserd.grbl.protocol import (
    AlarmMsg,
    Banner,
    BuildOptions,
    MachineState,
    Overrides,
    SettingLine,
    StatusReport,
    VersionInfo,
)
from laserd.grbl.status import MachineStatus, StatusTracker

_SET_RE = re.compile(r"^\$(\d+)=(.*)$")
StatusPredicate = Callable[[MachineStatus], bool]


@dataclass(frozen=True, slots=True)
class Alarm:
    """The controller's last ``ALARM:N`` (cleared when it leaves the alarm state)."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class ControllerChanged:
    """The link's state, status, alarm or identity changed; read the link for the values.

    ``cause`` says what happened: ``"status"``, ``"alarm"``, ``"connecting"``,
    ``"connected"`` or ``"disconnected"``.
    """

    cause: str


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """The controller's ``$`` settings changed: read from ``$$`` or written with ``$N=v``."""

    #: Every setting known now (``{"$110": "6000", ...}``).
    settings: Mapping[str, str]
    #: The keys whose value is new.
    changed: frozenset[str]


@dataclass(frozen=True, slots=True)
class WireLine:
    """One raw line on the wire: ``direction`` ``"rx"`` (received) or ``"tx"`` (sent).

    Emitted as one of three kinds, so a subscriber picks by type what it can keep up with
    (subscribe to ``WireLine`` for all of them); the link builds none that nobody hears.
    """

    direction: str
    line: str


@dataclass(frozen=True, slots=True)
class SerialLine(WireLine):
    """Console traffic: commands, their replies and the controller's push messages."""


@dataclass(frozen=True, slots=True)
class StatusLine(WireLine):
    """A status report (``<Idle|...>``): 5-10 a second."""


@dataclass(frozen=True, slots=True)
class StreamLine(WireLine):
    """A streamed job line or the ``ok`` answering it: thousands a minute."""


class ControllerState:
    """State, status, settings, identity and alarm of the controller. Loop-thread only."""

    def __init__(self) -> None:
        self.state = MachineState.DISCONNECTED
        self.tracker = StatusTracker()
        #: Status reports that carried ``Ov:`` (GRBL sends it on a change, else now and then).
        self.ov_reports = 0
        self.firmware: str | None = None
        self.version: str | None = None
        self.settings: dict[str, str] = {}
        self.alarm: Alarm | None = None
        self.build_options: BuildOptions | None = None
        #: Settings whose value changed since :meth:`take_changed` (one report per command:
        #: a ``$$`` listing is some 35 lines).
        self._changed: set[str] = set()
        self._waiters: list[tuple[StatusPredicate, asyncio.Future[MachineStatus]]] = []

    @property
    def linked(self) -> bool:
        """Past the handshake's start: the state follows the controller's reports."""
        return self.state not in (MachineState.DISCONNECTED, MachineState.CONNECTING)

    # ------------------------------------------------------------------ messages

    def on_status(self, report: StatusReport) -> MachineStatus:
        status = self.tracker.update(report)
        if report.overrides is not None:
            self.ov_reports += 1
        if self.linked:
            self.state = status.state
        if status.state != MachineState.ALARM and self.alarm is not None:
            self.alarm = None  # unlocked or homed
        for entry in tuple(self._waiters):
            predicate, fut = entry
            if not fut.done() and predicate(status):
                fut.set_result(status)
        return status

    def on_alarm(self, msg: AlarmMsg) -> None:
        self.alarm = Alarm(msg.code, msg.meaning)
        if self.linked:
            self.state = MachineState.ALARM
        self.tracker.with_state(MachineState.ALARM)

    def on_banner(self, msg: Banner) -> None:
        self.firmware = self.firmware if self.version else f"Grbl {msg.version}"
        self.tracker.reset()

    def on_version(self, msg: VersionInfo) -> None:
        self.version = msg.version
        self.firmware = f"Grbl {msg.version}"

    def on_setting(self, msg: SettingLine) -> None:
        """A ``$N=value`` line of a ``$$`` listing."""
        if not msg.name.startswith("N"):  # else a startup block, not a setting
            self._set(f"${msg.name}", msg.value)

    def on_written(self, line: str) -> None:
        """A command succeeded: when it was ``$N=value``, the controller holds that now."""
        m = _SET_RE.match(line)
        if m is not None:
            self._set(f"${m.group(1)}", m.group(2))

    def take_changed(self) -> frozenset[str]:
        """The settings whose value changed since the last call."""
        changed, self._changed = frozenset(self._changed), set()
        return changed

    def _set(self, key: str, value: str) -> None:
        if self.settings.get(key) != value:
            self.settings[key] = value
            self._changed.add(key)

    # ------------------------------------------------------------------ connection

    def connecting(self) -> None:
        self.state = MachineState.CONNECTING

    def connected(self, state: MachineState) -> None:
        self.state = state

    def disconnected(self) -> bool:
        """The port is gone; True when that is news. Waiters for a status fail."""
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_exception(LinkDown())
        changed = self.state != MachineState.DISCONNECTED
        self.state = MachineState.DISCONNECTED
        return changed

    # ------------------------------------------------------------------ waiting

    def add_waiter(
        self, predicate: StatusPredicate, fut: asyncio.Future[MachineStatus]
    ) -> tuple[StatusPredicate, asyncio.Future[MachineStatus]]:
        """``fut`` gets the first status report satisfying ``predicate``."""
        entry = (predicate, fut)
        self._waiters.append(entry)
        return entry

    def remove_waiter(self, entry: tuple[StatusPredicate, asyncio.Future[MachineStatus]]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(entry)

    @property
    def overrides(self) -> Overrides:
        return self.tracker.overrides
