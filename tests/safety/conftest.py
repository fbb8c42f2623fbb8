"""Fixtures for the safety supervisor tests (the rig itself is in rig.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from laserd.events import EventHub
from tests.safety.rig import Rig, SerialLine


@pytest.fixture
def line() -> Iterator[SerialLine]:
    serial_line = SerialLine()
    yield serial_line
    serial_line.close()


@pytest.fixture
async def rig(line: SerialLine) -> AsyncIterator[Rig]:
    hub = EventHub()
    hub.bind_loop(asyncio.get_running_loop())
    factory = MockFactory()
    r = Rig(factory, line, hub)
    yield r
    for sup in r.supervisors:
        await sup.close()
    factory.close()
