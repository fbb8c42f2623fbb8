"""The process's file descriptors, the budget the connection caps must fit in.

An attacker on the LAN can open sockets until descriptors run out (:mod:`laserd.netguard`
caps them). Here: the numbers the caps are sized with (the systemd unit's ``LimitNOFILE=`` is
checked against them by a test), the start-up check that the configured cap fits under the
process's limit, and the loop's handler that turns a flood of failed ``accept()`` calls into
one throttled log line (:class:`ThrottledLog`, also used for other lines an attacker can cause
at will).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import time
from collections.abc import Callable
from typing import Any

from laserd.settings import ServerSettings

log = logging.getLogger(__name__)

#: Descriptors kept free for everything that is not a client connection: the database and
#: its journal, the serial port, GPIO, uploads being written, processing, logging.
FD_RESERVE = 64
#: Listen backlog. asyncio accepts up to this many connections in one go, and a refused one
#: is closed only a few loop iterations later, while more bursts may arrive: the descriptor
#: budget holds :data:`ACCEPT_BURSTS` of them on top of the cap.
BACKLOG = 64
ACCEPT_BURSTS = 4
#: At most one "out of descriptors" line per this many seconds (asyncio would log a traceback
#: for every failed accept()).
RESOURCE_LOG_INTERVAL_S = 10.0
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class ThrottledLog:
    """Allows one log line per ``interval_s``, and counts the ones it held back in between.

    For messages an attacker can cause at will (refused connections, exhausted descriptors):
    the first is logged at once, the rest are summarised in the next allowed line, so the
    journal keeps room for the audit lines.
    """

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.suppressed = 0
        self._next_at = float("-inf")

    def allow(self) -> int | None:
        """``None``: hold this line back. Otherwise log now; the number held back since the
        previous line is returned (and reset)."""
        now = self.clock()
        if now < self._next_at:
            self.suppressed += 1
            return None
        self._next_at = now + self.interval_s
        held, self.suppressed = self.suppressed, 0
        return held


def check_descriptor_budget(settings: ServerSettings) -> None:
    """Warn at start when the connection cap does not fit under the descriptor limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    bursts = ACCEPT_BURSTS * BACKLOG
    needed = settings.max_connections + bursts + FD_RESERVE
    if soft != resource.RLIM_INFINITY and needed > soft:
        log.warning(
            "server.max_connections = %d does not fit under the open-file limit %d (with %d "
            "for bursts of connections being accepted and refused, and %d for the database, "
            "the controller and files): raise LimitNOFILE= in the unit or lower "
            "server.max_connections",
            settings.max_connections,
            soft,
            bursts,
            FD_RESERVE,
        )


def install_resource_handler(loop: asyncio.AbstractEventLoop) -> None:
    """Out-of-descriptor errors of ``accept()`` as one throttled line, not a traceback each.

    asyncio reports every failed ``accept()`` (EMFILE, ENFILE, ENOBUFS, ENOMEM) to the loop's
    exception handler, whose default logs the whole traceback; an attacker who exhausts the
    descriptors would fill the journal with them. Everything else goes to the handler that was
    there before (or asyncio's default).
    """
    previous = loop.get_exception_handler()
    throttle = ThrottledLog(RESOURCE_LOG_INTERVAL_S)

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _RESOURCE_ERRNOS:
            held = throttle.allow()
            if held is not None:
                soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                log.error(
                    "%s: %s (open-file limit %s; %d more since the last line)",
                    context.get("message", "out of system resources"),
                    exc.strerror or exc,
                    soft,
                    held,
                )
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
