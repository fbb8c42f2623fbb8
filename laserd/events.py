"""The event bus: typed events on the loop, and the WebSocket clients' bounded queues.

One way to hear about things. A producer calls :meth:`EventHub.emit` with a typed event (a
dataclass: :class:`laserd.grbl.controller.ControllerChanged`, :class:`SettingsChanged` and
:class:`WireLine` from the link; :class:`laserd.safety.Trip` and
:class:`laserd.safety.SafetyAudit` from the safety supervisor; :class:`Event`, a message for
WebSocket clients); whoever cares subscribes by type with
:meth:`EventHub.on` (a subscription to a base class hears its subclasses). Handlers run on the
event loop, synchronously, in subscription order; one that returns an awaitable has it run as
a task; one that raises is logged and never breaks the producer. ``emit`` never blocks and
never awaits, and may be called from any thread (it is handed to the loop).

Messages for WebSocket clients are the :class:`Event` type (``hub.publish(type, data)`` emits
one). The clients' :class:`Subscription` queues are fed from the bus like any other handler:
each has a bounded queue; when it is full, the oldest *replaceable* message (status
snapshots) is dropped first; if none is replaceable the oldest message is dropped and the
subscriber is marked as having lost messages.

Not on the bus, on purpose: the safety reflex (GPIO thread → laser-enable output → real-time
byte on the serial descriptor) never waits for the loop; only its record comes here after.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

log = logging.getLogger(__name__)

#: Event types whose newer message makes an older one worthless.
REPLACEABLE = frozenset({"machine"})

E = TypeVar("E")
Handler = Callable[[Any], object]


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
    """The bus: subscribe by type, emit typed events; fans :class:`Event` out to clients.

    Emitting is O(handlers of the event's type) and never awaits.
    """

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._handlers: dict[type, list[Handler]] = {}
        #: Handlers per concrete event type (its own and its bases'), built on first emit.
        self._routes: dict[type, tuple[Handler, ...]] = {}
        #: Bumped on every subscribe/unsubscribe: a hot path may cache :meth:`wants` until
        #: it changes (the link does, per received line).
        self.generation = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id: int | None = None
        self.on(Event, self._fan_out)

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread_id = threading.get_ident()

    # ------------------------------------------------------------------ the bus

    def on(self, kind: type[E], fn: Callable[[E], object]) -> None:
        """Call ``fn(event)`` on the loop for every emitted event that is a ``kind``."""
        self._handlers.setdefault(kind, []).append(fn)
        self._routes.clear()
        self.generation += 1

    def off(self, kind: type[E], fn: Callable[[E], object]) -> None:
        handlers = self._handlers.get(kind, [])
        if fn in handlers:
            handlers.remove(fn)
            self._routes.clear()
            self.generation += 1

    def wants(self, kind: type) -> bool:
        """Whether anyone hears ``kind`` (lets a hot path skip building the event)."""
        return bool(self._route(kind))

    def emit(self, event: object) -> None:
        """Deliver ``event`` to its type's handlers. From any thread: off the loop thread it
        is handed to the loop safely."""
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

    def _route(self, kind: type) -> tuple[Handler, ...]:
        route = self._routes.get(kind)
        if route is None:
            route = tuple(
                fn for cls in kind.__mro__ for fn in self._handlers.get(cls, ())
            )
            self._routes[kind] = route
        return route

    def _deliver(self, event: object) -> None:
        for fn in self._route(type(event)):
            try:
                result = fn(event)
                if inspect.isawaitable(result):
                    self._spawn(result, event)
            except Exception:  # a handler bug must never break the producer
                log.exception("event handler %r failed for %s", fn, type(event).__name__)

    def _spawn(self, awaitable: Any, event: object) -> None:
        async def run() -> None:
            try:
                await awaitable
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event handler failed for %s", type(event).__name__)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the handlers' tasks started so far (at shutdown)."""
        while self._tasks:
            await asyncio.gather(*tuple(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------ WebSocket clients

    def publish(
        self, type_: str, data: dict[str, Any], *, audience: frozenset[str] | None = None
    ) -> None:
        """Emit a message for WebSocket clients (an :class:`Event`). From any thread."""
        self.emit(Event(type_, data, audience))

    def subscribe(self, role: str, user_id: int | None, maxsize: int = 256) -> Subscription:
        sub = Subscription(role=role, user_id=user_id, maxsize=maxsize)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.closed = True
        sub._ready.set()
        self._subs.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def _fan_out(self, event: Event) -> None:
        for sub in tuple(self._subs):
            if event.audience is not None and sub.role not in event.audience:
                continue
            if sub.filter is not None and not sub.filter(event):
                continue
            sub._offer(event)

    def close(self) -> None:
        for sub in tuple(self._subs):
            self.unsubscribe(sub)
