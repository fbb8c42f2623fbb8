"""The simulated GRBL 1.1h controller itself: bytes in, bytes out, motion on a clock.

:class:`GrblCore` has no I/O and no thread: the runner feeds it the bytes that have arrived
(already paced at the baud rate), lets it advance to "now", and drains what it has to send.
That keeps the protocol logic deterministic and the pacing in one place.

How it mirrors GRBL's main loop:

* Real-time bytes (``?`` ``!`` ``~`` 0x18 0x84 0x85 0x90-0x9D 0x9E 0xA0 0xA1) are acted on the
  moment they arrive, wherever they are in a line or comment, and never enter the receive
  buffer. Other bytes >= 0x80 are dropped, as GRBL's serial interrupt does.
* Other bytes go to a receive buffer of ``rx_buffer_bytes``. A byte arriving while it is full
  is lost and counted as an overflow (real GRBL corrupts the line the same way).
* The protocol loop moves bytes into an 80-character line buffer (spaces, comments and
  ``/`` dropped, letters upper-cased), and executes each line at ``\\n`` or ``\\r`` — so a
  ``\\r\\n`` ending costs an extra ``ok`` for the empty line, exactly like the real board.
* A line runs as a generator that yields while it waits: for planner room (motion), for the
  planner to empty (spindle/coolant/dwell/offset changes: GRBL's buffer sync), for a dwell or
  homing to pass, or for an injected slow acknowledgement. While a line waits no further
  line is taken, so the receive buffer fills and ``ok`` for later lines is delayed.

Why it is one long module: it mirrors GRBL's protocol loop (real-time bytes, receive buffer,
line buffer, execution that waits on the planner) as one piece, so it can be read against
GRBL's ``protocol.c`` and ``serial.c`` side by side (tests/unit/test_rooms.py lists it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator

from . import reports
from .block_parser import (
    FEED_MOTIONS,
    MM_PER_INCH,
    BlockPlan,
    GrblError,
    Modal,
    Offsets,
    arc_points,
    parse_block,
)
from .grbl_settings import default_settings, store_setting
from .kinematics import MotionQueue, PlannerBlock, axis_limit
from .record import SimRecord
from .states import (
    ALARM,
    CHECK,
    CYCLE,
    DOOR,
    HOLD,
    HOMING,
    IDLE,
    JOG,
    LINE_BUFFER_CHARS,
    MOVING_STATES,
    SLEEP,
)  # fmt: skip
from .system_commands import SystemCommands

CRITICAL_ALARMS = frozenset({1, 2})

RT_STATUS, RT_HOLD, RT_START, RT_RESET = 0x3F, 0x21, 0x7E, 0x18
RT_DOOR, RT_JOG_CANCEL = 0x84, 0x85
REALTIME_ASCII = frozenset({RT_STATUS, RT_HOLD, RT_START, RT_RESET})
REALTIME_EXTENDED = frozenset({RT_DOOR, RT_JOG_CANCEL, *range(0x90, 0x9F), 0xA0, 0xA1})

_PAREN, _SEMI, _OVERFLOW = 1, 2, 4

Waiting = Generator[None, None, None]


def _lround(value: float) -> int:
    """C's lround (halves away from zero), as GRBL rounds targets to steps."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


class GrblCore(SystemCommands):
    """State machine of one simulated board. Not thread-safe: the runner serialises calls."""

    def __init__(
        self,
        *,
        record: SimRecord,
        bed_mm: tuple[float, float] = (400.0, 400.0),
        rx_buffer_bytes: int = 128,
        planner_blocks: int = 15,
        time_scale: float = 1.0,
        settings: dict[int, float] | None = None,
        starve_window_s: float = 0.5,
        now: float | None = None,
    ) -> None:
        self.record = record
        self.rx_capacity = rx_buffer_bytes
        self.time_scale = time_scale
        self.starve_window_s = starve_window_s
        # "EEPROM": survives resets and power cycles.
        self.settings = default_settings(bed_mm)
        for number, value in (settings or {}).items():
            store_setting(self.settings, number, value)
        self.offsets = Offsets()
        self.startup_lines = ["", ""]
        self.build_info = ""
        # Volatile.
        self.motion = MotionQueue(planner_blocks)
        self.out = bytearray()
        self.rx = bytearray()
        self._now = time.monotonic() if now is None else now
        self.sim_time_s = 0.0
        self.door_pin_open = False
        self.slow_ack_s = 0.0
        #: Fault injection: real-time bytes this board drops (a firmware or a line that loses
        #: them); they are still recorded as received.
        self.ignored_realtime: frozenset[int] = frozenset()
        self._error_on: dict[int, int] = {}  # by lines taken since start (never reset)
        self._lines_taken = 0
        self._rotation = reports.StatusRotation()
        self.laser_on = False
        self.laser_power = 0.0
        self.powered = False
        self.state = IDLE
        self._clear_volatile()

    # ------------------------------------------------------------------ lifecycle

    def _clear_volatile(self) -> None:
        self.rx.clear()
        self._line_chars: list[str] = []
        self._line_flags = 0
        self.pending: Waiting | None = None
        self.modal = Modal()
        self.offsets.g92 = [0.0, 0.0, 0.0]
        self.offsets.tool_length_mm = 0.0
        self.feed_ovr = 100
        self.rapid_ovr = 100
        self.spindle_ovr = 100
        self.spindle_stop_ovr = False
        self.suspend_complete = False
        self.door_latched = False
        self.jog_cancel_pending = False
        self._jog_epoch = 0
        self.critical_lock = False
        self.exec_laser = (5, 0.0, 0)
        self._rotation.reset()
        self._wake_at = math.inf
        self._starve_since: float | None = None
        self.motion.stop_here()
        self.planned = self.motion.position()

    def power_up(self) -> None:
        """A freshly powered board: position unknown (zero), banner, Alarm if homing is on."""
        self.powered = True
        self.motion.set_position((0.0, 0.0, 0.0))
        self._clear_volatile()
        self.state = ALARM if self._homing_enabled else IDLE
        self._update_beam()
        self._greet()

    def power_down(self) -> None:
        """Unplugged: the board stops dead and says nothing until powered again."""
        self.motion.stop_here()
        self._clear_volatile()
        self.state = IDLE
        self.powered = False
        self.out.clear()
        self._update_beam()

    def _greet(self) -> None:
        self.record.banners += 1
        self._emit(reports.BANNER)
        if self.state == ALARM:
            self._emit(reports.MSG_UNLOCK_NEEDED)
        elif self.door_pin_open:  # GRBL checks the door before the startup lines
            self._safety_door()
        else:
            self._run_startup_lines()

    def soft_reset(self) -> None:
        """0x18: stop at once; ALARM:3 if motion was cut short; flush; banner."""
        self.record.resets += 1
        interrupted = self.state in (CYCLE, JOG, HOMING) or (
            self.state in (HOLD, DOOR) and not self.suspend_complete
        )
        code = 6 if self.state == HOMING else 3
        was_alarm = self.state in (ALARM, SLEEP)
        self._clear_volatile()
        self.state = ALARM if (interrupted or was_alarm) else IDLE
        self._update_beam()
        if interrupted:
            self._emit(f"ALARM:{code}")
            self.record.alarms.append(code)
        self._greet()

    # ------------------------------------------------------------------ I/O entry points

    def receive(self, data: bytes, now: float) -> None:
        """Bytes that have just arrived at the controller's UART."""
        if not self.powered:
            return
        self.record.bytes_in += len(data)
        rx = self.rx
        for byte in data:
            if byte in REALTIME_ASCII or byte >= 0x80:
                if byte in REALTIME_ASCII or byte in REALTIME_EXTENDED:
                    self._realtime(byte)
                continue
            if len(rx) >= self.rx_capacity:
                self._pump()
                if len(rx) >= self.rx_capacity:
                    self.record.rx_overflows += 1
                    self.record.fault(
                        f"rx overflow: byte {byte:#04x} dropped with {len(rx)} bytes buffered "
                        f"(line {self.record.lines_received + 1})"
                    )
                    continue
            rx.append(byte)
            if byte == 10 or byte == 13:
                self._pump()  # GRBL takes a finished line at once, before later bytes arrive
        self._pump()

    def tick(self, now: float) -> None:
        """Advance the machine to real time ``now``."""
        dt_s = max(0.0, now - self._now) * self.time_scale
        self._now = now
        if not self.powered:
            return
        self.sim_time_s += dt_s
        finished: list[PlannerBlock] = []
        decelerating = (self.state in (HOLD, DOOR) and not self.suspend_complete) or (
            self.state == JOG and self.jog_cancel_pending
        )
        if decelerating:
            finished = self.motion.advance(dt_s, self.feed_ovr, self.rapid_ovr, hold=True)
            if self.motion.speed_mm_s <= 0.0 or not self.motion.blocks:
                self._stopped_after_hold()
        elif self.state in MOVING_STATES:
            finished = self.motion.advance(dt_s, self.feed_ovr, self.rapid_ovr)
        for block in finished:
            self.record.blocks_executed += 1
            if not block.jog:
                self.exec_laser = (block.spindle, block.laser_s, block.motion_mode)
        if self.state in MOVING_STATES and not self.motion.blocks:
            if self.state == CYCLE and self.pending is None and not self._line_waiting():
                self._starve_since = now
            self.state = IDLE
        self._pump()
        self._update_beam()
        self.record.state = self.state_text()
        self.record.position_mm = self.motion.position()

    def next_wake_s(self) -> float:
        """Seconds of real time until :meth:`tick` has something to do (``inf``: only on input)."""
        wait = self._wake_at - self._now
        moving = self.state in MOVING_STATES or (
            self.state in (HOLD, DOOR) and not self.suspend_complete
        )
        if moving and self.motion.blocks:
            head = self.motion.time_to_head_end(self.feed_ovr, self.rapid_ovr) / self.time_scale
            wait = min(wait, min(0.02, max(0.0005, head)))
            stopping = (self.state in (HOLD, DOOR) and not self.suspend_complete) or (
                self.state == JOG and self.jog_cancel_pending
            )
            if stopping:  # wake when the hold ends, so the beam-off time is exact
                stop_s = self.motion.speed_mm_s / self.motion.blocks[0].accel_mm_s2
                wait = min(wait, max(0.0005, stop_s / self.time_scale))
        return max(0.0, wait)

    def _emit(self, text: str) -> None:
        if self.powered:
            self.out += text.encode("ascii", "replace") + b"\r\n"

    # ------------------------------------------------------------------ real-time commands

    def _realtime(self, byte: int) -> None:
        self.record.realtime_log.append((time.monotonic_ns(), byte))
        if byte in self.ignored_realtime:
            return
        if byte == RT_RESET:
            self.soft_reset()
        elif byte == RT_STATUS:
            self._emit(self.status_report())
        elif byte == RT_HOLD:
            self._feed_hold()
        elif byte == RT_START:
            self._cycle_start()
        elif byte == RT_DOOR:
            self._safety_door()
        elif byte == RT_JOG_CANCEL:
            if self.state == JOG:
                self.jog_cancel_pending = True
        elif 0x90 <= byte <= 0x9D:
            self._override(byte)
        elif byte == 0x9E:
            if self.state == HOLD and self.suspend_complete:
                self.spindle_stop_ovr = not self.spindle_stop_ovr
                self._rotation.overrides_changed()
        elif byte == 0xA0 and self.state in (IDLE, CYCLE, HOLD):
            self.modal.coolant_flood = not self.modal.coolant_flood
            self._rotation.overrides_changed()
        self._update_beam()

    def _feed_hold(self) -> None:
        if self.state == JOG:
            self.jog_cancel_pending = True
        elif self.state == CYCLE:
            self.state = HOLD
            self.suspend_complete = False
        elif self.state == IDLE:
            self.state = HOLD
            self.suspend_complete = True

    def _cycle_start(self) -> None:
        resumable = (self.state == HOLD and self.suspend_complete) or (
            self.state == DOOR and self.suspend_complete and not self.door_pin_open
        )
        if resumable:
            self.spindle_stop_ovr = False
            self.door_latched = False
            self.suspend_complete = False
            self.state = CYCLE if self.motion.blocks else IDLE

    def _safety_door(self) -> None:
        if self.state in (ALARM, CHECK, SLEEP):
            return
        self._emit(reports.MSG_CHECK_DOOR)
        if self.state == HOMING:
            self._alarm(7, critical=False)
            return
        self.door_latched = True
        if self.state == JOG:
            self.jog_cancel_pending = True
            return
        moving = self.state == CYCLE or (self.state == HOLD and not self.suspend_complete)
        self.state = DOOR
        self.suspend_complete = not moving
        self.spindle_stop_ovr = False

    def door_switch(self, open_: bool) -> None:
        """The door input changed: opening acts like 0x84 (without a byte on the wire)."""
        was_open = self.door_pin_open
        self.door_pin_open = open_
        if open_ and not was_open and self.powered:
            self._safety_door()
            self._update_beam()

    def _stopped_after_hold(self) -> None:
        if self.state == JOG:
            self.motion.stop_here()
            self.planned = self.motion.position()
            self.jog_cancel_pending = False
            self._jog_epoch += 1
            if self.door_latched:
                self.state = DOOR
                self.suspend_complete = True
            else:
                self.state = IDLE
        else:
            self.suspend_complete = True

    def _override(self, byte: int) -> None:
        """As GRBL 1.1: ``Ov:`` goes into the next report only when a value really changed
        (a reset to 100 % of an override already at 100 % is ignored); otherwise it comes
        with the regular rotation (every 10 reports idle, 20 busy)."""
        before = (self.feed_ovr, self.rapid_ovr, self.spindle_ovr)
        if byte <= 0x94:
            step = {0x90: None, 0x91: 10, 0x92: -10, 0x93: 1, 0x94: -1}[byte]
            self.feed_ovr = 100 if step is None else max(10, min(200, self.feed_ovr + step))
        elif byte <= 0x97:
            self.rapid_ovr = {0x95: 100, 0x96: 50, 0x97: 25}[byte]
        elif byte >= 0x99:
            step = {0x99: None, 0x9A: 10, 0x9B: -10, 0x9C: 1, 0x9D: -1}[byte]
            self.spindle_ovr = 100 if step is None else max(10, min(200, self.spindle_ovr + step))
        if (self.feed_ovr, self.rapid_ovr, self.spindle_ovr) != before:
            self._rotation.overrides_changed()

    # ------------------------------------------------------------------ alarms

    def raise_alarm(self, code: int) -> None:
        """An alarm from outside the stream (limit switch, injected fault)."""
        if self.powered:
            self._alarm(code, critical=code in CRITICAL_ALARMS)
            self._update_beam()

    def _alarm(self, code: int, *, critical: bool) -> None:
        self.motion.stop_here()
        self.planned = self.motion.position()
        self.pending = None
        self.state = ALARM
        self.suspend_complete = False
        self.jog_cancel_pending = False
        self._starve_since = None
        self.record.alarms.append(code)
        self._emit(f"ALARM:{code}")
        if critical:
            self.critical_lock = True
            self._emit(reports.MSG_RESET_TO_CONTINUE)
        self._update_beam()

    # ------------------------------------------------------------------ laser output

    def _beam_now(self) -> tuple[bool, float]:
        if self.state in (ALARM, SLEEP, HOMING, CHECK) or self.spindle_stop_ovr:
            return False, 0.0
        laser_mode = bool(int(self.settings[32]))
        if self.suspend_complete and (self.state == DOOR or (self.state == HOLD and laser_mode)):
            return False, 0.0  # a door stops the spindle; a hold stops the laser (laser mode)
        max_s = self.settings[30] or 1.0
        moving = bool(self.motion.blocks) and (
            self.state in MOVING_STATES or self.state in (HOLD, DOOR)
        )
        if moving:
            b = self.motion.blocks[0]
            if b.jog:
                return False, 0.0
            spindle, s, mode = b.spindle, b.laser_s, b.motion_mode
            if laser_mode and b.rapid:
                return False, 0.0
        else:
            spindle, s, mode = self.exec_laser
            if laser_mode and (spindle == 4 or mode not in FEED_MOTIONS):
                return False, 0.0
        if spindle == 5 or s <= 0:
            return False, 0.0
        return True, min(max_s, s) * self.spindle_ovr / 100.0

    def _update_beam(self) -> None:
        on, power = self._beam_now()
        if on != self.laser_on or power != self.laser_power:
            self.laser_on, self.laser_power = on, power
            self.record.laser_log.append((time.monotonic_ns(), on, power))

    # ------------------------------------------------------------------ status

    def state_text(self) -> str:
        if self.state == HOLD:
            return "Hold:0" if self.suspend_complete else "Hold:1"
        if self.state == DOOR:
            if not self.suspend_complete:
                return "Door:2"
            return "Door:1" if self.door_pin_open else "Door:0"
        return self.state

    def status_report(self) -> str:
        inches = bool(int(self.settings[13]))
        mask = int(self.settings[10])
        position = self.motion.position()
        wco = self.offsets.wco(self.modal.wcs)
        parts = [self.state_text()]
        if mask & 1:
            parts.append("MPos:" + reports.axes(position, inches))
        else:
            work = [p - w for p, w in zip(position, wco, strict=True)]
            parts.append("WPos:" + reports.axes(work, inches))
        if mask & 2:
            parts.append(f"Bf:{self.motion.free},{self.rx_capacity - len(self.rx)}")
        feed = self.motion.speed_mm_s * 60.0 / (MM_PER_INCH if inches else 1.0)
        parts.append(f"FS:{feed:.0f},{self.laser_power:.0f}")
        if self.door_pin_open:
            parts.append("Pn:D")
        busy = self.state in (CYCLE, HOLD, JOG, HOMING, DOOR)
        if self._rotation.take_wco(busy):
            parts.append("WCO:" + reports.axes(wco, inches))
        if self._rotation.take_ovr(busy):
            parts.append(f"Ov:{self.feed_ovr},{self.rapid_ovr},{self.spindle_ovr}")
            spindle = self.motion.blocks[0].spindle if self.motion.blocks else self.exec_laser[0]
            flags = {3: "S", 4: "C"}.get(spindle, "") if not self.spindle_stop_ovr else ""
            flags += "F" if self.modal.coolant_flood else ""
            if flags:
                parts.append("A:" + flags)
        return "<" + "|".join(parts) + ">"

    # ------------------------------------------------------------------ protocol loop

    def _line_waiting(self) -> bool:
        return 10 in self.rx or 13 in self.rx

    def _pump(self) -> None:
        """Run the protocol loop until it has to wait for something."""
        self._wake_at = math.inf
        while True:
            if self.pending is not None:
                gen = self.pending
                try:
                    next(gen)
                    return
                except StopIteration:
                    if self.pending is gen:
                        self.pending = None
                continue
            if self.critical_lock or self.state == SLEEP or not self.powered or not self.rx:
                return
            taken = self._take_line()
            if taken is None:
                return
            self.pending = self._run_line(*taken)

    def _take_line(self) -> tuple[str, bool] | None:
        rx = self.rx
        chars = self._line_chars
        flags = self._line_flags
        for i, c in enumerate(rx):
            if c == 10 or c == 13:
                del rx[: i + 1]
                self._line_chars = []
                self._line_flags = 0
                return "".join(chars), bool(flags & _OVERFLOW)
            if flags:
                if c == 0x29 and flags & _PAREN:
                    flags &= ~_PAREN
            elif c <= 32 or c == 0x2F:
                continue
            elif c == 0x28:
                flags |= _PAREN
            elif c == 0x3B:
                flags |= _SEMI
            elif len(chars) >= LINE_BUFFER_CHARS - 1:
                flags |= _OVERFLOW
            else:
                chars.append(chr(c).upper())
        rx.clear()
        self._line_flags = flags
        return None

    def _wait_real(self, seconds: float) -> Waiting:
        deadline = self._now + seconds
        while self._now < deadline:
            self._wake_at = min(self._wake_at, deadline)
            yield

    def _wait_sim(self, seconds: float) -> Waiting:
        deadline = self.sim_time_s + seconds
        while self.sim_time_s < deadline:
            self._wake_at = min(
                self._wake_at, self._now + (deadline - self.sim_time_s) / self.time_scale
            )
            yield

    def _reply(self, code: int = 0) -> Waiting:
        if code:
            self._emit(f"error:{code}")
            self.record.errors.append((self._line_no, code))
            return
        if self.slow_ack_s > 0:
            yield from self._wait_real(self.slow_ack_s)
        self._emit("ok")
        self.record.lines_executed += 1

    def _run_line(self, line: str, overflow: bool) -> Waiting:
        self.record.lines_received += 1
        self._line_no = self.record.lines_received
        self._lines_taken += 1
        self.record.last_lines.append(line)
        injected = self._error_on.pop(self._lines_taken, None)
        is_motion = False
        if injected is not None:
            yield from self._reply(injected)
        elif overflow:
            yield from self._reply(11)
        elif not line:
            yield from self._reply(0)
        elif line[0] == "$":
            yield from self._system(line[1:])
        elif self.state in (ALARM, JOG):
            yield from self._reply(9)
        else:
            is_motion = True
            yield from self._gcode(line)
        if not is_motion:
            self._starve_since = None

    def error_on_line(self, n: int, code: int) -> None:
        self._error_on[self._lines_taken + n] = code

    # ------------------------------------------------------------------ G-code

    @property
    def _homing_enabled(self) -> bool:
        return bool(int(self.settings[22]))

    def _within_travel(self, target: tuple[float, ...]) -> bool:
        travel = (self.settings[130], self.settings[131], self.settings[132])
        return all(-1e-6 <= t <= m + 1e-6 for t, m in zip(target, travel, strict=True))

    def _sync(self) -> Waiting:
        while self.motion.blocks or self.state == CYCLE:
            yield

    def _gcode(self, line: str) -> Waiting:
        try:
            plan = parse_block(
                line, self.modal, self.offsets, self.planned,
                laser_mode=bool(int(self.settings[32])), arc_tolerance_mm=self.settings[12],
            )  # fmt: skip
        except GrblError as exc:
            yield from self._reply(exc.code)
            return
        if self.state == CHECK:
            self.modal = plan.modal
            self.modal.program_flow = 0
            self.planned = plan.position_after
            yield from self._reply(0)
            return
        if plan.sync_before or plan.program_flow:
            self._starve_since = None
            yield from self._sync()
        self.modal = plan.modal
        self.offsets = plan.offsets
        if plan.sync_before:
            self.exec_laser = (self.modal.spindle, self.modal.spindle_s, self.modal.motion)
            self._rotation.overrides_changed()
            self._update_beam()
        if plan.store_home:
            setattr(self.offsets, plan.store_home, list(self.planned))
        if plan.dwell_s:
            yield from self._wait_sim(plan.dwell_s)
        for move in plan.moves:
            points = (
                arc_points(self.planned, move, self.settings[12]) if move.arc else (move.target,)
            )
            for point in points:
                if int(self.settings[20]) and not self._within_travel(point):
                    yield from self._soft_limit()
                    return
                yield from self._queue(point, rapid=move.rapid, feed_mm_min=move.feed_mm_min)
        if not plan.moves:
            self._starve_since = None
        if plan.program_flow:
            yield from self._program_flow(plan)
        yield from self._reply(0)

    def _program_flow(self, plan: BlockPlan) -> Waiting:
        yield from self._sync()
        if plan.program_flow == 0:
            self._feed_hold()
        elif plan.program_flow in (2, 30):
            m = self.modal
            m.motion, m.plane, m.distance, m.feed_mode, m.wcs = 10, 170, 900, 940, 0
            m.spindle, m.coolant_flood = 5, False
            self.feed_ovr = self.rapid_ovr = self.spindle_ovr = 100
            self.exec_laser = (5, m.spindle_s, m.motion)
            self._rotation.overrides_changed()
            self._update_beam()
            self._emit(reports.MSG_PROGRAM_END)
        self.modal.program_flow = 0

    def _soft_limit(self) -> Waiting:
        if self.state == CYCLE:
            self._feed_hold()
            while not (self.state == HOLD and self.suspend_complete):
                yield
        self._alarm(2, critical=True)

    def _make_block(self, end: tuple[float, float, float], *, rapid: bool, feed_mm_min: float,
                    jog: bool = False) -> PlannerBlock | None:  # fmt: skip
        start = self.planned
        s = self.settings
        # As GRBL's planner: the move is between step-rounded targets ($100-$102), so short
        # segments change direction by whole steps and a move of no whole step is dropped.
        delta = [
            (_lround(e * spm) - _lround(b * spm)) / spm
            for e, b, spm in zip(end, start, (s[100], s[101], s[102]), strict=True)
        ]
        length = math.sqrt(sum(d * d for d in delta))
        if length < 1e-6:
            return None
        unit = (delta[0] / length, delta[1] / length, delta[2] / length)
        max_rate = axis_limit(unit, (s[110] / 60.0, s[111] / 60.0, s[112] / 60.0))
        accel = axis_limit(unit, (s[120], s[121], s[122]))
        feed = max_rate if rapid else min(max_rate, feed_mm_min / 60.0)
        return PlannerBlock(
            start=start, end=end, length_mm=length, unit=unit, feed_mm_s=feed,
            max_rate_mm_s=max_rate, accel_mm_s2=accel, rapid=rapid, jog=jog,
            spindle=5 if jog else self.modal.spindle,
            laser_s=0.0 if jog else min(self.modal.spindle_s, s[30]),
            motion_mode=0 if rapid else self.modal.motion,
        )  # fmt: skip

    def _queue(self, end: tuple[float, float, float], *, rapid: bool, feed_mm_min: float,
               jog: bool = False) -> Waiting:  # fmt: skip
        block = self._make_block(end, rapid=rapid, feed_mm_min=feed_mm_min, jog=jog)
        if block is None:
            if not jog and int(self.settings[32]) and self.modal.spindle == 3:
                yield from self._sync()
                self.exec_laser = (3, self.modal.spindle_s, self.modal.motion)
                self._update_beam()
            return
        epoch = self._jog_epoch
        while self.motion.free <= 0:
            yield
        if jog and epoch != self._jog_epoch:
            return  # cancelled while waiting for room: the jog is flushed, the line still acked
        if self._starve_since is not None and not jog:
            gap_s = self._now - self._starve_since
            if gap_s <= self.starve_window_s:
                self.record.starvations += 1
                self.record.planner_starved_s += gap_s
        self._starve_since = None
        st = self.settings
        self.motion.push(block, st[11], (st[120], st[121], st[122]))
        self.planned = block.end
        if self.state == IDLE:
            self.state = JOG if jog else CYCLE
        self._update_beam()
