"""The raw lines on the wire, told on the event bus as the kinds of :class:`WireLine`.

A streamed job is thousands of lines a minute and status reports come 5-10 a second; the
console wants neither. So the link reports three kinds (:class:`SerialLine`,
:class:`StatusLine`, :class:`StreamLine`) and builds none that nobody subscribed to: which
kinds are heard is asked of the bus once per change of its subscriptions, not per line.
"""

from __future__ import annotations

from laserd.events import EventHub
from laserd.grbl.controller import SerialLine, StatusLine, StreamLine
from laserd.grbl.sender import Sender
from laserd.grbl.stream import QueuedLine


class WireTap:
    """Tells the lines the link sends and receives to whoever hears them."""

    def __init__(self, hub: EventHub | None) -> None:
        self._hub = hub
        #: Whether anyone hears console, status and stream lines, as of ``_gen``.
        self._heard = (False, False, False)
        self._gen = -1

    def heard(self) -> tuple[bool, bool, bool]:
        hub = self._hub
        if hub is not None and hub.generation != self._gen:
            self._gen = hub.generation
            self._heard = (hub.wants(SerialLine), hub.wants(StatusLine), hub.wants(StreamLine))
        return self._heard

    def received(self, line: str, sender: Sender) -> None:
        """A received line other than a status report, as the kind of the line it answers."""
        console, _, stream = self.heard()
        if not (console or stream):
            return
        answers = sender.oldest()
        if answers is not None and answers.stream is not None:
            if stream:
                self._emit(StreamLine("rx", line))
        elif console:
            self._emit(SerialLine("rx", line))

    def status(self, line: str) -> None:
        if self.heard()[1]:
            self._emit(StatusLine("rx", line))

    def sent(self, items: list[QueuedLine]) -> None:
        console, _, stream = self.heard()
        if not (console or stream):
            return
        for item in items:
            if item.stream is None:
                if console:
                    self._emit(SerialLine("tx", item.text))
            elif stream:
                self._emit(StreamLine("tx", item.text))

    def _emit(self, event: object) -> None:
        assert self._hub is not None  # nothing is heard without a hub
        self._hub.emit(event)
