"""The seams to the physical world: the serial port and the GPIO pin factory.

Real hardware and simulation differ only here (DESIGN principle 5). With
``[machine] simulate = true`` the controller is a simulated GRBL on a pseudo-terminal (so the
real serial code runs) and every pin is a gpiozero mock pin. Tests build a :class:`Hardware`
of simulated parts and hand it to ``create_app`` instead of patching modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from laserd.settings import Settings

if TYPE_CHECKING:
    from laserd.grbl.simulator import SimulatedGrbl


@dataclass
class Hardware:
    #: gpiozero pin factory; ``None`` means gpiozero's default (real pins on a Pi).
    pin_factory: Any
    #: Serial device of the controller. For a simulator it is filled in when it starts.
    serial_port: str
    #: The simulated controller, when simulating; started by the app, stopped at exit.
    simulator: SimulatedGrbl | None = None

    @property
    def simulated(self) -> bool:
        return self.simulator is not None


def mock_pin_factory() -> Any:
    from gpiozero.pins.mock import MockFactory

    return MockFactory()


def simulated_hardware(settings: Settings) -> Hardware:
    from laserd.grbl.simulator import SimulatedGrbl

    sim = SimulatedGrbl(
        time_scale=settings.simulator.time_scale,
        baudrate=settings.machine.baudrate,
        bed_mm=(settings.machine.bed_mm.x, settings.machine.bed_mm.y),
        rx_buffer_bytes=settings.machine.rx_buffer_bytes,
        link_dir=settings.storage.state_dir / "sim",
    )
    return Hardware(pin_factory=mock_pin_factory(), serial_port="", simulator=sim)


def hardware_from_settings(settings: Settings) -> Hardware:
    if settings.machine.simulate:
        return simulated_hardware(settings)
    return Hardware(pin_factory=None, serial_port=settings.machine.port)
