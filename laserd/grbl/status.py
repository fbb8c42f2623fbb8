"""Status reports completed: GRBL sends ``WCO``, ``Ov`` and ``A`` only every few reports.

:class:`StatusTracker` remembers them and turns each parsed
:class:`~laserd.grbl.protocol.StatusReport` into a whole :class:`MachineStatus`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from laserd.grbl.protocol import ORIGIN, MachineState, Overrides, Position, StatusReport


@dataclass(frozen=True, slots=True)
class MachineStatus:
    """A status report completed with the fields GRBL sent earlier (WCO, Ov, A)."""

    state: MachineState
    substate: int | None
    mpos: Position
    wpos: Position
    wco: Position
    feed: float
    power: float
    overrides: Overrides
    accessories: str
    pins: str
    planner_free: int | None
    rx_free: int | None
    line_number: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "state": str(self.state),
            "substate": self.substate,
            "mpos": self.mpos.as_dict(),
            "wpos": self.wpos.as_dict(),
            "feed": self.feed,
            "power": self.power,
            "overrides": self.overrides.as_dict(),
            "buffer": {"planner": self.planner_free, "rx": self.rx_free},
            "pins": self.pins,
            "accessories": self.accessories,
        }


@dataclass(slots=True)
class StatusTracker:
    """Completes status reports: GRBL sends ``WCO`` and ``Ov``/``A`` only every few reports.

    ``WPos = MPos - WCO``; whichever of the two positions the controller reports (``$10``),
    the other is computed from the last known ``WCO`` (zero until the first one arrives).
    """

    wco: Position = ORIGIN
    overrides: Overrides = field(default_factory=Overrides)
    accessories: str = ""
    last: MachineStatus | None = None

    def reset(self) -> None:
        """After a controller reset: keep WCO (work offsets survive), clear the rest."""
        self.overrides = Overrides()
        self.accessories = ""

    def update(self, report: StatusReport) -> MachineStatus:
        if report.wco is not None:
            self.wco = report.wco
        if report.overrides is not None:
            self.overrides = report.overrides
            # A: is only sent together with Ov; its absence then means everything is off.
            self.accessories = report.accessories or ""
        if report.mpos is not None:
            mpos = report.mpos
            wpos = report.wpos if report.wpos is not None else mpos - self.wco
        else:
            assert report.wpos is not None
            wpos = report.wpos
            mpos = wpos + self.wco
        prev = self.last
        status = MachineStatus(
            state=report.state,
            substate=report.substate,
            mpos=mpos,
            wpos=wpos,
            wco=self.wco,
            feed=report.feed if report.feed is not None else (prev.feed if prev else 0.0),
            power=report.spindle if report.spindle is not None else (
                prev.power if prev else 0.0),
            overrides=self.overrides,
            accessories=self.accessories,
            pins=report.pins,
            planner_free=report.planner_free,
            rx_free=report.rx_free,
            line_number=report.line_number,
        )
        self.last = status
        return status

    def with_state(self, state: MachineState) -> MachineStatus | None:
        """The last status with another state (e.g. alarm seen before the next report)."""
        if self.last is None:
            return None
        self.last = replace(self.last, state=state, substate=None)
        return self.last
