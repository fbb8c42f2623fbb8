"""The seams to the physical world: the serial port and the GPIO pin factory.

Real hardware and simulation differ only here (DESIGN principle 5). With
``[machine] simulate = true`` the controller is a simulated GRBL on a pseudo-terminal (so the
real serial code runs) and every pin is a gpiozero mock pin. Tests build a :class:`Hardware`
of simulated parts and hand it to ``create_app`` instead of patching modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gpiozero.pins.mock import MockFactory, MockPin

from laserd.settings import Settings

if TYPE_CHECKING:
    from laserd.grbl.sim import SimulatedGrbl


class GpioPin(Protocol):
    """What laserd uses of a gpiozero pin (a device's ``.pin``).

    ``state`` is the raw level (an output is written through it); ``when_changed`` is
    called with ``(ticks, state)`` from gpiozero's callback thread, or from the thread that
    drove a mock pin, on each edge selected by ``edges``.
    """

    state: Any
    edges: str
    when_changed: Callable[[Any, Any], None] | None


class PinFactory(Protocol):
    """A gpiozero pin factory, as laserd hands it to gpiozero's devices.

    Every gpiozero factory satisfies it: ``MockFactory`` when simulating and in tests, a
    real factory (lgpio, RPi.GPIO, ...) on a Pi. laserd itself only asks it for pins by
    number and closes it; the rest of the interface is gpiozero's business.
    """

    def pin(self, name: int | str) -> GpioPin: ...

    def close(self) -> None: ...


@dataclass
class Hardware:
    #: gpiozero pin factory; ``None`` means gpiozero's default (real pins on a Pi).
    pin_factory: PinFactory | None
    #: Serial device of the controller. For a simulator it is filled in when it starts.
    serial_port: str
    #: The simulated controller, when simulating; started by the app, stopped at exit.
    simulator: SimulatedGrbl | None = None

    @property
    def simulated(self) -> bool:
        return self.simulator is not None


def mock_pin_factory() -> PinFactory:
    """Simulated pins: every input and output a :class:`gpiozero.pins.mock.MockPin`."""
    factory: PinFactory = MockFactory()
    return factory


def drive_simulated_pin(pin: GpioPin, level: bool) -> bool:
    """Drive a simulated input to a raw ``level``, as a switch would; False for a real pin.

    The edge runs in the calling thread through the pin's ``when_changed`` callback, exactly
    like one reported by gpiozero on a Pi (the safety reflex included). A real pin is read
    from the outside world and cannot be driven: the caller refuses the request.
    """
    if not isinstance(pin, MockPin):
        return False
    if level:
        pin.drive_high()
    else:
        pin.drive_low()
    return True


def simulated_hardware(settings: Settings) -> Hardware:
    from laserd.grbl.sim import SimulatedGrbl

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
