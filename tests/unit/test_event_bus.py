"""The event bus (laserd.events.EventHub): subscribe by type, one way to hear about things."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from laserd.events import Event, EventHub
from laserd.grbl.controller import ControllerChanged, SerialLine


@dataclass(frozen=True)
class Base:
    n: int


@dataclass(frozen=True)
class Derived(Base):
    pass


def test_handlers_hear_their_type_and_its_subclasses_in_order() -> None:
    hub = EventHub()
    heard: list[str] = []
    hub.on(Base, lambda e: heard.append(f"base:{e.n}"))
    hub.on(Derived, lambda e: heard.append(f"derived:{e.n}"))
    hub.on(ControllerChanged, lambda e: heard.append(e.cause))
    hub.emit(Base(1))
    hub.emit(Derived(2))
    hub.emit(ControllerChanged("status"))
    hub.emit(SerialLine("rx", "ok"))  # nobody listens: nothing happens
    assert heard == ["base:1", "derived:2", "base:2", "status"]


def test_wants_follows_subscriptions_so_hot_paths_can_skip_building_events() -> None:
    hub = EventHub()
    assert not hub.wants(SerialLine)
    fn = lambda e: None  # noqa: E731
    hub.on(SerialLine, fn)
    assert hub.wants(SerialLine)
    hub.off(SerialLine, fn)
    assert not hub.wants(SerialLine)
    hub.on(object, fn)  # a handler of everything hears this type too
    assert hub.wants(SerialLine)


def test_a_failing_handler_does_not_stop_the_others_or_the_producer() -> None:
    hub = EventHub()
    heard: list[int] = []

    def broken(e: Base) -> None:
        raise RuntimeError("bug")

    hub.on(Base, broken)
    hub.on(Base, lambda e: heard.append(e.n))
    hub.emit(Base(7))
    assert heard == [7]


async def test_async_handlers_run_as_tasks_and_drain_waits_for_them() -> None:
    hub = EventHub()
    hub.bind_loop(asyncio.get_running_loop())
    done: list[int] = []

    async def slow(e: Base) -> None:
        await asyncio.sleep(0.01)
        done.append(e.n)

    hub.on(Base, slow)
    hub.emit(Base(3))
    assert done == []  # emit never awaits
    await hub.drain()
    assert done == [3]


async def test_emit_from_another_thread_is_handed_to_the_loop() -> None:
    hub = EventHub()
    hub.bind_loop(asyncio.get_running_loop())
    threads: list[int] = []
    hub.on(Base, lambda e: threads.append(threading.get_ident()))
    t = threading.Thread(target=hub.emit, args=(Base(1),))
    t.start()
    t.join()
    assert threads == []  # not delivered in the emitting thread
    await asyncio.sleep(0.01)
    assert threads == [threading.get_ident()]


async def test_websocket_subscriptions_are_fed_from_the_bus_by_audience() -> None:
    hub = EventHub()
    admin = hub.subscribe("admin", 1)
    user = hub.subscribe("user", 2)
    seen: list[str] = []
    hub.on(Event, lambda e: seen.append(e.type))
    hub.publish("log", {"line": "ok"}, audience=frozenset({"admin"}))
    hub.publish("job", {"id": 1})
    assert [(await admin.get()).type, (await admin.get()).type] == ["log", "job"]
    assert (await user.get()).type == "job" and user.pending() == 0
    assert seen == ["log", "job"]
