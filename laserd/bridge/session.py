"""One bridge session: a desktop sender's GRBL traffic, relayed through laserd's own link.

The client believes it is wired to the board. Its lines go to the controller through the
link's counted queue (:meth:`GrblLink.command`), so laserd's character counting — not the
client's — decides what enters the controller's 128-byte buffer; the client's own counting
only paces what it sends to us. What the board says comes back as the board said it:

* every ``ok`` / ``error:N`` that answers one of the client's lines, in order. Answers laserd
  gives itself (an empty or comment-only line: ``ok``; a ``$`` command the console policy
  refuses: ``[MSG:...]`` and ``error:N``) are slotted into the same order, so the client's
  count of answers always matches its count of lines;
* push messages (``[MSG:...]``, ``ALARM:N``, the banner after a reset, ``$$`` and ``[GC:]``
  replies) as they arrive;
* a status report ``<...>`` for each ``?`` the client sent (the next report the link sees;
  the link polls anyway, so the client's ``?`` is also written through).

Real-time bytes: ``?`` as above; ``!`` feed hold; ``~`` only through the safety supervisor's
resume gate (interlocks closed for ``resume_delay_s``), exactly like the web's resume; 0x18
soft reset; 0x84, 0x85, feed/rapid/power overrides and coolant toggles written through; 0x9E
(the spindle-stop override, never sent blindly) is dropped with a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from laserd import errors
from laserd.bridge.wire import ClientStream
from laserd.console_policy import INERT, ConsoleKind, check_console_line
from laserd.grbl.errors import LineRefused, LinkDown
from laserd.grbl.protocol import RT, Banner, MachineState, normalise_line, parse_line

if TYPE_CHECKING:
    from laserd.grbl.link import GrblLink
    from laserd.safety import SafetySupervisor

log = logging.getLogger(__name__)

#: A client line is answered whenever the controller gets to it: a long move may hold the
#: buffer for minutes, so there is no per-line deadline (the session's own timeouts apply).
LINE_TIMEOUT_S = 7 * 24 * 3600.0
#: Status requests remembered at once (a client hammering ``?`` gets one report per report).
MAX_STATUS_REQUESTS = 4
#: GRBL error codes used for laserd's own refusals.
ERR_OVERFLOW = 11  # line too long
ERR_NOT_IDLE = 8  # '$' command refused in this state (here: an interlock is open)
ERR_UNSUPPORTED = 3  # '$' command not supported (here: refused by policy)
#: Real-time bytes written through to the controller as they are.
PASS_THROUGH = frozenset(
    {RT.SAFETY_DOOR, RT.JOG_CANCEL, *range(0x90, 0x9E), 0xA0, 0xA1}
)
SPINDLE_STOP_TOGGLE = 0x9E
#: ``$`` commands that change what the controller keeps: admin-only, as on the web.
ADMIN_ONLY = frozenset({ConsoleKind.SETTING, ConsoleKind.STARTUP_BLOCK, ConsoleKind.RESTORE})
#: Wait for an answer from the controller (None) or write laserd's own lines.
_WIRE = None


@dataclass
class SessionStats:
    lines: int = 0  # client lines answered
    lines_sent: int = 0  # client lines handed to the controller
    started_mono: float = field(default_factory=time.monotonic)
    last_line_mono: float = field(default_factory=time.monotonic)


class Session:
    """The relay for one accepted connection. Loop-thread only."""

    def __init__(
        self,
        *,
        link: GrblLink,
        safety: SafetySupervisor,
        write: Callable[[bytes], None],
        on_trouble: Callable[[str], None],
        admin: bool = False,
    ) -> None:
        self._link = link
        self._safety = safety
        self._write = write
        #: Called with a reason when the session cannot go on (link lost ...).
        self._on_trouble = on_trouble
        #: Settings writes pass only in a session an admin accepted (as PUT /machine/settings).
        self._admin = admin
        self._stream = ClientStream()
        #: One entry per client line not yet answered: _WIRE (the controller answers) or the
        #: lines laserd answers it with itself.
        self._answers: deque[list[str] | None] = deque()
        self._status_requests = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.stats = SessionStats()
        self.pause_reason: str | None = None
        self.closed = False

    # ------------------------------------------------------------------ queries

    @property
    def in_flight(self) -> int:
        """Client lines still waiting for their answer."""
        return len(self._answers)

    # ------------------------------------------------------------------ to the client

    def say(self, *lines: str) -> None:
        if not self.closed:
            self._write("".join(f"{line}\r\n" for line in lines).encode("latin-1", "replace"))

    def message(self, text: str) -> None:
        """A push message in GRBL's format, which every sender shows in its console."""
        self.say(f"[MSG:laserd: {text}]")

    def _answer_locally(self, *lines: str) -> None:
        if self._answers:
            self._answers.append(list(lines))  # after the lines the controller still owes
        else:
            self.stats.lines += 1
            self.say(*lines)

    def _flush_local(self) -> None:
        while self._answers and self._answers[0] is not _WIRE:
            lines = self._answers.popleft()
            assert lines is not None
            self.stats.lines += 1
            self.say(*lines)

    # ------------------------------------------------------------------ from the controller

    def on_serial_line(self, direction: str, line: str) -> None:
        """Every line on the wire (the link's line listener); only received ones matter."""
        if direction != "rx" or self.closed:
            return
        if line.startswith("<"):
            if self._status_requests > 0:
                self._status_requests -= 1
                self.say(line)
            return
        if line == "ok" or line.startswith("error:"):
            self._flush_local()
            if self._answers:  # else: the answer to a line laserd sent itself
                self._answers.popleft()
                self.stats.lines += 1
                self.say(line)
                self._flush_local()
            return
        if isinstance(parse_line(line), Banner):
            # The controller restarted: it forgot every line it held, and answers none of them.
            self._answers = deque(a for a in self._answers if a is not _WIRE)
            self._status_requests = 0
            self.say(line)
            self._flush_local()
            return
        self.say(line)  # [MSG:], ALARM:N, $$ lines, [GC:], [VER:], [OPT:], ...

    # ------------------------------------------------------------------ from the client

    def feed(self, data: bytes) -> None:
        for kind, value in self._stream.feed(data):
            if kind == "rt":
                assert isinstance(value, int)
                self._realtime(value)
            elif kind == "line":
                assert isinstance(value, str)
                self._line(value)
            else:
                self._answer_locally(f"error:{ERR_OVERFLOW}")

    def _line(self, text: str) -> None:
        self.stats.last_line_mono = time.monotonic()
        try:
            line = normalise_line(text)
        except LineRefused as exc:
            self._answer_locally(f"[MSG:laserd: refused: {exc}]", f"error:{ERR_OVERFLOW}")
            return
        if not line:
            self._answer_locally("ok")  # empty or comment only: GRBL says ok
            return
        if line.startswith("$"):
            refusal = self._dollar_refusal(line)
            if refusal is not None:
                self._answer_locally(f"[MSG:laserd: refused: {refusal[1]}]", f"error:{refusal[0]}")
                return
        self._answers.append(_WIRE)
        self.stats.lines_sent += 1
        task = asyncio.get_running_loop().create_task(self._send(line))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _dollar_refusal(self, line: str) -> tuple[int, str] | None:
        """The console's policy (laserd.console_policy): reads always; everything else only
        while every interlock is closed; a startup block that is more than modes never."""
        try:
            kind = check_console_line(line)
        except errors.ValidationFailed as exc:
            return ERR_UNSUPPORTED, exc.message
        if kind not in INERT and not self._safety.all_safe():
            return ERR_NOT_IDLE, f"interlock open ({', '.join(self._safety.open_interlocks())})"
        if kind in ADMIN_ONLY and not self._admin:
            return ERR_UNSUPPORTED, "only an admin may change the controller's settings"
        return None

    async def _send(self, line: str) -> None:
        """Hand one line to the link's counted queue. Its answer arrives as a line on the
        wire (see :meth:`on_serial_line`); the outcome here only matters when the line could
        not be sent at all."""
        try:
            await self._link.command(line, timeout_s=LINE_TIMEOUT_S)
        except LinkDown:
            self._on_trouble("link_down")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # error:N, ALARM, a reset: the wire already said so
            log.debug("bridge line %r: %s", line, exc)

    def _realtime(self, byte: int) -> None:
        link = self._link
        if byte == RT.STATUS:
            self._status_requests = min(MAX_STATUS_REQUESTS, self._status_requests + 1)
            link.realtime(RT.STATUS)
        elif byte == RT.HOLD:
            link.pause()
        elif byte == RT.RESUME:
            self.resume()
        elif byte == RT.RESET:
            link.realtime(RT.RESET)
        elif byte in PASS_THROUGH:
            link.realtime(byte)
        elif byte == SPINDLE_STOP_TOGGLE:
            self.message("the spindle/laser stop override (0x9E) is not passed on")
        # any other byte >= 0x80 means nothing to GRBL 1.1: dropped, as the board would

    def resume(self) -> bool:
        """``~`` from the client: through the same gate as the web's resume. A refusal is
        told to the client as a message and nothing is written."""
        safety = self._safety
        try:
            safety.check_can_resume()
            if not safety.armed:
                safety.arm()  # the enable output first, so motion restarts with it up
            safety.resume(self._link.resume)
        except errors.LaserdError as exc:
            self.message(f"resume refused: {exc.message}")
            return False
        self.pause_reason = None
        return True

    def on_trip(self, name: str, action: str) -> None:
        """The reflex already stopped the beam (0x84 or 0x18); say why, as a person would."""
        self.pause_reason = f"interlock:{name}"
        if action == "pause":
            self.message(f"interlock {name} opened: paused; close it, then resume (~)")
        else:
            self.message(f"interlock {name} opened: the controller was reset")

    # ------------------------------------------------------------------ end

    async def close(self) -> None:
        self.closed = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def machine_quiet(self) -> bool:
        """Nothing owed to the client and the controller at rest."""
        return not self._answers and self._link.state in (
            MachineState.IDLE,
            MachineState.ALARM,
            MachineState.CHECK,
        )
