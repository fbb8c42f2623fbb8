"""Hub of typed events with bounded per-client queues.

Producers (machine status, jobs, interlocks, file processing, console) call
:meth:`EventHub.publish`; it never blocks and never awaits, so the streamer and the safety
supervisor can publish without being slowed by a slow WebSocket client. Each subscriber has a
bounded queue: when it is full, the oldest *replaceable* message (status snapshots) is dropped
first; if none is replaceable the oldest message is dropped and the subscriber is marked as
having lost messages.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Event types whose newer message makes an older one worthless.
REPLACEABLE = frozenset({"machine"})


@dataclass(slots=True)
class Event:
    type: str
    data: dict[str, Any]
    #: Only subscribers whose ``roles`` include one of these see it; None means everyone.
    audience: frozenset[str] | None = None
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    def as_message(self) -> dict[str, Any]:
        return {"type": self.type, **self.data}

    def text(self, dumps: Callable[[dict[str, Any]], str]) -> str:
        """The message serialised once, however many clients it goes to (100 WebSocket
        clients at 10 status reports a second would otherwise cost the loop 1,000 encodings a
        second)."""
        if self._text is None:
            self._text = dumps(self.as_message())
        return self._text


@dataclass(eq=False)
class Subscription:
    """One consumer (a WebSocket client). Read with ``await sub.get()``."""

    role: str
    user_id: int | None
    maxsize: int = 256
    _queue: collections.deque[Event] = field(default_factory=collections.deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: int = 0
    closed: bool = False
    filter: Callable[[Event], bool] | None = None

    def _offer(self, event: Event) -> None:
        if self.closed:
            return
        if len(self._queue) >= self.maxsize:
            for i, old in enumerate(self._queue):
                if old.type in REPLACEABLE:
                    del self._queue[i]
                    break
            else:
                self._queue.popleft()
            self.dropped += 1
        self._queue.append(event)
        self._ready.set()

    async def get(self) -> Event:
        while not self._queue:
            if self.closed:
                raise asyncio.CancelledError
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def pending(self) -> int:
        return len(self._queue)


class EventHub:
    """Fan-out of events to subscribers; publish is O(subscribers) and never awaits."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._listeners: list[Callable[[Event], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id: int | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread_id = threading.get_ident()

    def subscribe(self, role: str, user_id: int | None, maxsize: int = 256) -> Subscription:
        sub = Subscription(role=role, user_id=user_id, maxsize=maxsize)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.closed = True
        sub._ready.set()
        self._subs.discard(sub)

    def add_listener(self, fn: Callable[[Event], None]) -> None:
        """In-process listeners (systemd status, audit); called synchronously on the loop."""
        self._listeners.append(fn)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def publish(
        self, type_: str, data: dict[str, Any], *, audience: frozenset[str] | None = None
    ) -> None:
        """Publish from any thread. Off the loop thread it is handed to the loop safely."""
        event = Event(type_, data, audience)
        if (
            self._loop is not None
            and self._thread_id is not None
            and threading.get_ident() != self._thread_id
        ):
            try:
                self._loop.call_soon_threadsafe(self._deliver, event)
            except RuntimeError:  # loop closed during shutdown
                pass
            return
        self._deliver(event)

    def _deliver(self, event: Event) -> None:
        for sub in tuple(self._subs):
            if event.audience is not None and sub.role not in event.audience:
                continue
            if sub.filter is not None and not sub.filter(event):
                continue
            sub._offer(event)
        for fn in self._listeners:
            try:
                fn(event)
            except Exception:  # a listener bug must never break the publisher
                log.exception("event listener failed for %s", event.type)

    def close(self) -> None:
        for sub in tuple(self._subs):
            self.unsubscribe(sub)
