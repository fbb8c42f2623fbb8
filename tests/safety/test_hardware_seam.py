"""The hardware seam drives simulated inputs; the safety code never touches gpiozero's mock
module itself (issue 13 item 3: ``laserd.hardware.drive_simulated_pin``)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from laserd.errors import Conflict
from laserd.hardware import drive_simulated_pin, mock_pin_factory
from tests.safety.rig import LASER_PIN, LID, Rig, in_thread

SAFETY = Path(__file__).resolve().parents[2] / "laserd" / "safety"


class RealPin:
    """Stands for a pin on real hardware: readable, with a callback, but nothing to drive."""

    def __init__(self) -> None:
        self.state = 0
        self.edges = "both"
        self.when_changed: Any = None


def test_a_mock_pin_is_driven_and_its_callback_runs_in_the_driving_thread() -> None:
    factory = MockFactory()
    try:
        pin = factory.pin(22)
        seen: list[bool] = []

        def on_edge(_ticks: Any, state: Any) -> None:  # held here: gpiozero keeps a weakref
            seen.append(bool(state))

        pin.edges = "both"
        pin.when_changed = on_edge
        assert drive_simulated_pin(pin, True) is True
        assert pin.state == 1 and seen == [True]
        assert drive_simulated_pin(pin, False) is True
        assert pin.state == 0 and seen == [True, False]
    finally:
        factory.close()


def test_a_real_pin_is_not_driven() -> None:
    pin = RealPin()
    calls: list[Any] = []
    pin.when_changed = lambda *a: calls.append(a)
    assert drive_simulated_pin(pin, True) is False
    assert pin.state == 0 and calls == []


def test_the_default_simulated_factory_gives_mock_pins() -> None:
    factory = mock_pin_factory()
    try:
        assert drive_simulated_pin(factory.pin(4), True)
    finally:
        factory.close()


async def test_driving_a_real_input_is_refused_and_the_laser_stays_armed(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID], laser_enable={"pin": LASER_PIN})
    sup.arm()
    lid = sup.interlocks[0]
    lid.pin = RealPin()  # as if the lid were wired to a real GPIO pin
    with pytest.raises(Conflict) as err:
        in_thread(lambda: sup.drive("lid", False))
    assert err.value.code == "not_simulated"
    assert sup.armed and rig.pin(LASER_PIN).state is True
    assert rig.line.bytes_written == []


async def test_driving_a_simulated_input_open_trips_through_the_seam(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID], laser_enable={"pin": LASER_PIN})
    sup.arm()
    in_thread(lambda: sup.drive("lid", False))
    assert not sup.armed and rig.pin(LASER_PIN).state is False
    assert rig.line.bytes_written == [0x84]


def test_the_safety_package_does_not_import_gpiozeros_mock_module() -> None:
    imported: set[str] = set()
    for path in SAFETY.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
                imported.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
    assert not {m for m in imported if m.startswith("gpiozero.pins.mock")}
