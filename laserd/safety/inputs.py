"""GPIO inputs of the safety supervisor: interlocks and the physical start button.

These classes only know wiring (which raw level means "circuit closed", which means
"safe") and hold the per-input state. The decisions — what an unsafe edge does, when a
return to safe counts — live in :mod:`laserd.safety.supervisor`, which the edge callbacks
call straight from gpiozero's callback thread.

gpiozero keeps only a *weak* reference to a pin's ``when_changed`` callback, so the
callbacks here are bound methods of objects the supervisor holds for its whole life.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gpiozero import InputDevice

from laserd.hardware import GpioPin, PinFactory
from laserd.settings import InterlockKind, InterlockSettings, StartButtonSettings

if TYPE_CHECKING:  # pragma: no cover - import for type names only
    from laserd.safety.supervisor import SafetySupervisor

#: GRBL real-time bytes the reflex may send (GRBL 1.1 interface: realtime commands).
SAFETY_DOOR = 0x84
SOFT_RESET = 0x18

#: Trip actions handed to the trip listeners (the job runner).
ACTION_PAUSE = "pause"
ACTION_FAIL = "fail"

#: Kind reported for the start button in snapshots and events (API.md ``GET /interlocks``).
START_KIND = "start"
START_NAME = "start"


def reflex_for(kind: InterlockKind, cuts_beam: bool) -> tuple[int, str]:
    """The real-time byte and the job action for a trip of an input of ``kind``.

    A safety door (resumable hold) is only safe when the laser-enable output really removes
    laser power: GRBL decelerates to a stop before it switches the spindle off, and under M3
    the beam keeps its power while decelerating. Without a beam-cutting output, and always
    for an E-stop, the controller gets a soft reset, which stops the beam at once.
    """
    if kind == InterlockKind.estop or not cuts_beam:
        return SOFT_RESET, ACTION_FAIL
    return SAFETY_DOOR, ACTION_PAUSE


class Interlock:
    """One interlock input (lid, E-stop, coolant flow, key switch, custom).

    ``safe`` is the debounced, supervisor-owned state: it becomes False on the first unsafe
    edge and True only after the input has read safe for ``debounce_s``. ``generation``
    counts edges so that a pending "became safe" confirmation can tell it was overtaken.
    """

    def __init__(
        self,
        cfg: InterlockSettings,
        pin_factory: PinFactory | None,
        supervisor: SafetySupervisor,
        cuts_beam: bool,
        now: float,
    ) -> None:
        self.name = cfg.name
        self.kind = InterlockKind(cfg.kind)
        self.pin_number = cfg.pin
        self.debounce_s = cfg.debounce_ms / 1000.0
        self.byte, self.action = reflex_for(self.kind, cuts_beam)
        # A pulled-up input reads low when its switch closes the circuit to ground; a
        # pulled-down one reads high when the switch closes it to 3.3 V.
        closed_level = not cfg.pull_up
        #: Raw pin level that means "safe". Normally closed: the closed circuit is safe, so an
        #: open circuit — a pressed E-stop, an opened lid, or a broken wire — is unsafe.
        self.safe_level: bool = closed_level if cfg.normally_closed else not closed_level
        # Fail safe: unknown counts as unsafe until the supervisor has confirmed a safe reading.
        self.safe = False
        self.since = now
        self.generation = 0
        #: Generation whose debounce is under way on the loop (None: none pending).
        self.confirming: int | None = None
        self._supervisor = supervisor
        self.device = InputDevice(cfg.pin, pull_up=cfg.pull_up, pin_factory=pin_factory)
        self.pin: GpioPin = self.device.pin
        # Raw edges, no gpiozero bounce: a driver-level debounce would delay the FIRST unsafe
        # edge, and that one must act at once. Debounce is applied to the return to safe only.
        self.pin.edges = "both"
        self.pin.when_changed = self._edge

    def reads_safe(self) -> bool:
        """Read the pin now; an unreadable pin counts as unsafe."""
        try:
            return bool(self.pin.state) == self.safe_level
        except Exception:
            return False

    def _edge(self, _ticks: Any, state: Any) -> None:
        """gpiozero callback (its callback thread, or the thread that drove a mock pin)."""
        if bool(state) == self.safe_level:
            self._supervisor._safe_edge(self)
        else:
            self._supervisor._unsafe_edge(self)

    def close(self) -> None:
        self.safe = False
        self.device.close()


class StartButton:
    """The optional physical start button (normally open push button).

    A press counts once the button has read pressed for ``bounce_s``: a start button is not
    a reflex, and an electrical spike must never start a laser job.
    """

    def __init__(
        self,
        cfg: StartButtonSettings,
        pin_factory: PinFactory | None,
        supervisor: SafetySupervisor,
        now: float,
    ) -> None:
        self.name = START_NAME
        self.kind = START_KIND
        self.pin_number = cfg.pin
        self.timeout_s = cfg.timeout_s
        self.bounce_s = cfg.bounce_ms / 1000.0
        #: Raw level while pressed: a pulled-up input is pulled to ground by the button.
        self.pressed_level: bool = not cfg.pull_up
        self.pressed = False
        self.since = now
        self.generation = 0
        self._supervisor = supervisor
        self.device = InputDevice(cfg.pin, pull_up=cfg.pull_up, pin_factory=pin_factory)
        self.pin: GpioPin = self.device.pin
        self.pin.edges = "both"
        self.pin.when_changed = self._edge

    def reads_pressed(self) -> bool:
        try:
            return bool(self.pin.state) == self.pressed_level
        except Exception:
            return False

    def _edge(self, _ticks: Any, state: Any) -> None:
        self.generation += 1
        self._supervisor._start_edge(self, self.generation, bool(state) == self.pressed_level)

    def close(self) -> None:
        self.device.close()
