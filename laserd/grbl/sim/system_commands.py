"""GRBL's ``$`` system commands for the simulated controller (a mixin of :class:`GrblCore`).

Kept apart from the protocol loop and motion so each file stays readable: ``$$``, ``$G``,
``$C``, ``$X``, ``$#``, ``$H`` (homing), ``$SLP``, ``$I``, ``$RST=``, ``$N`` startup lines,
``$n=value`` settings and ``$J=`` jogging. Each command is a generator like any line: it
yields while it waits (homing time, planner room for a jog) and ends with its answer.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol

from . import reports
from .block_parser import GrblError, Modal, Offsets, parse_block, parse_jog
from .grbl_settings import default_settings, format_setting, store_setting, validate_setting
from .kinematics import MotionQueue
from .record import SimRecord
from .states import ALARM, CHECK, CYCLE, HOLD, HOMING, IDLE, JOG, LINE_BUFFER_CHARS, SLEEP

Waiting = Generator[None, None, None]
HOMING_SETTLE_S = 0.05


class _Core(Protocol):
    """What the ``$`` commands use of :class:`GrblCore` (the type of ``self`` in the mixin).

    A mixin cannot name its subclass as ``self``'s type; a protocol can, and the type checker
    then holds ``GrblCore`` to it wherever it calls a command.
    """

    record: SimRecord
    rx_capacity: int
    settings: dict[int, float]
    offsets: Offsets
    startup_lines: list[str]
    build_info: str
    motion: MotionQueue
    door_pin_open: bool
    state: str
    modal: Modal
    planned: tuple[float, float, float]

    @property
    def _homing_enabled(self) -> bool: ...
    def _emit(self, text: str) -> None: ...
    def _reply(self, code: int = 0) -> Waiting: ...
    def soft_reset(self) -> None: ...
    def _update_beam(self) -> None: ...
    def _wait_sim(self, seconds: float) -> Waiting: ...
    def _within_travel(self, target: tuple[float, ...]) -> bool: ...
    def _queue(
        self, end: tuple[float, float, float], *, rapid: bool, feed_mm_min: float, jog: bool = ...
    ) -> Waiting: ...

    # The commands themselves (below), as they call one another.
    def _simple_system(self, cmd: str) -> int: ...
    def _setting_command(self, cmd: str) -> int: ...
    def _startup_line_command(self, rest: str) -> Waiting: ...
    def _run_startup_lines(self) -> None: ...
    def _restore(self, what: str) -> Waiting: ...
    def _homing(self) -> Waiting: ...
    def _jog(self, body: str) -> Waiting: ...


class SystemCommands:
    """``$`` commands; mixed into :class:`GrblCore`, whose state they read and change."""

    def _system(self: _Core, cmd: str) -> Waiting:
        state = self.state
        if not cmd:
            self._emit(reports.HELP)
            yield from self._reply(0)
        elif cmd[0] == "J":
            if state not in (IDLE, JOG):
                yield from self._reply(8)
            elif not cmd.startswith("J="):
                yield from self._reply(3)
            else:
                yield from self._jog(cmd[2:])
        elif cmd[0] in "$GCX":
            if len(cmd) != 1:
                yield from self._reply(3)
            else:
                code = self._simple_system(cmd)
                if code >= 0:
                    yield from self._reply(code)
        elif state not in (IDLE, ALARM):
            yield from self._reply(8)
        elif cmd == "#":
            for line in reports.parameter_lines(self.offsets, bool(int(self.settings[13]))):
                self._emit(line)
            yield from self._reply(0)
        elif cmd == "H":
            yield from self._homing()
        elif cmd == "SLP":
            yield from self._reply(0)
            self.motion.stop_here()
            self.state = SLEEP
            self._update_beam()
            self._emit(reports.MSG_SLEEPING)
        elif cmd[0] == "I":
            if len(cmd) == 1:
                for line in reports.version_lines(
                    self.build_info, self.motion.capacity, self.rx_capacity
                ):
                    self._emit(line)
                yield from self._reply(0)
            elif cmd[1] == "=" and len(cmd) - 2 <= LINE_BUFFER_CHARS - 2:
                self.build_info = cmd[2:]
                yield from self._reply(0)
            else:
                yield from self._reply(3)
        elif cmd.startswith("RST="):
            yield from self._restore(cmd[4:])
        elif cmd[0] == "N":
            yield from self._startup_line_command(cmd[1:])
        else:
            yield from self._reply(self._setting_command(cmd))

    def _simple_system(self: _Core, cmd: str) -> int:
        if cmd == "$":
            if self.state in (CYCLE, HOLD):
                return 8
            for number, value in self.settings.items():
                self._emit(format_setting(number, value))
        elif cmd == "G":
            self._emit(self.modal.report())
        elif cmd == "C":
            if self.state == CHECK:
                self._emit(reports.MSG_DISABLED)
                self._emit("ok")
                self.record.lines_executed += 1
                self.soft_reset()
                return -1
            if self.state != IDLE:
                return 8
            self.state = CHECK
            self._emit(reports.MSG_ENABLED)
        elif cmd == "X" and self.state == ALARM:
            if self.door_pin_open:
                return 13
            self._emit(reports.MSG_UNLOCKED)
            self.state = IDLE
        return 0

    def _setting_command(self: _Core, cmd: str) -> int:
        number_text, sep, value_text = cmd.partition("=")
        if not number_text.isdigit():
            return 3 if not number_text[:1].isdigit() else 2
        if not sep:
            return 3
        try:
            value = float(value_text)
        except ValueError:
            return 2
        number = int(number_text)
        code = validate_setting(self.settings, number, value)
        if code == 0:
            store_setting(self.settings, number, value)
        return code

    def _startup_line_command(self: _Core, rest: str) -> Waiting:
        if not rest:
            for i, line in enumerate(self.startup_lines):
                self._emit(f"$N{i}={line}")
            yield from self._reply(0)
            return
        index_text, sep, line = rest.partition("=")
        if not sep or index_text not in ("0", "1"):
            yield from self._reply(3)
            return
        if self.state != IDLE:
            yield from self._reply(8)
            return
        try:
            parse_block(line, self.modal, self.offsets, self.planned,
                        laser_mode=True, arc_tolerance_mm=self.settings[12])  # fmt: skip
        except GrblError as exc:
            yield from self._reply(exc.code)
            return
        self.startup_lines[int(index_text)] = line
        yield from self._reply(0)

    def _run_startup_lines(self: _Core) -> None:
        """Startup lines (``$N0``/``$N1``) after a reset: modal changes only, ``>line:ok``."""
        for line in self.startup_lines:
            if not line:
                continue
            try:
                plan = parse_block(line, self.modal, self.offsets, self.planned,
                                   laser_mode=True, arc_tolerance_mm=self.settings[12])  # fmt: skip
            except GrblError as exc:
                self._emit(f">{line}:error:{exc.code}")
                continue
            self.modal = plan.modal
            self._emit(f">{line}:ok")

    def _restore(self: _Core, what: str) -> Waiting:
        if what not in ("$", "#", "*"):
            yield from self._reply(3)
            return
        if what in ("$", "*"):
            bed = (self.settings[130], self.settings[131])
            self.settings = default_settings(bed)
        if what in ("#", "*"):
            self.offsets = Offsets()
        if what == "*":
            self.startup_lines = ["", ""]
        self._emit(reports.MSG_RESTORING)
        yield from self._reply(0)
        self.soft_reset()

    def _homing(self: _Core) -> Waiting:
        if not self._homing_enabled:
            yield from self._reply(5)
            return
        if self.door_pin_open:
            yield from self._reply(13)
            return
        self.state = HOMING
        self._update_beam()
        s = self.settings
        start = self.motion.position()
        seek_mm_s = max(s[25], 1.0) / 60.0
        locate_mm_s = max(s[24], 1.0) / 60.0
        travel_s = max(abs(v) for v in start) / seek_mm_s
        duration_s = travel_s + 2.0 * s[27] / locate_mm_s + HOMING_SETTLE_S
        yield from self._wait_sim(duration_s)
        self.motion.set_position((0.0, 0.0, 0.0))
        self.planned = (0.0, 0.0, 0.0)
        self.state = IDLE
        self._update_beam()
        yield from self._reply(0)
        self._run_startup_lines()

    def _jog(self: _Core, body: str) -> Waiting:
        try:
            target, feed_mm_min = parse_jog(body, self.modal, self.offsets, self.planned)
        except GrblError as exc:
            yield from self._reply(exc.code)
            return
        if int(self.settings[20]) and not self._within_travel(target):
            yield from self._reply(15)
            return
        yield from self._queue(target, rapid=False, feed_mm_min=feed_mm_min, jog=True)
        yield from self._reply(0)
