"""The one owner of "the machine is in use": jobs, framing, jogging, homing and the console.

Each of those used to decide on its own whether the machine was free ("is a job active?",
"is a frame running?"), and a job's start awaits the database between its checks and becoming
the active job. A laser-on frame accepted in that gap ran alongside the job: both requests
were accepted, then both stopped. Now every use takes a :class:`Claim` here, synchronously and
in the same step as its other checks (no ``await`` in between), and gives it back when the use
ends. On one event loop that makes the check and the taking one atomic step: of two requests
arriving together exactly one wins, the other gets 409 ``machine_busy`` naming the holder.

Stopping is never a use: cancel, feed hold, jog cancel, soft reset and the safety reflex do
not claim anything and are never refused here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from laserd import errors


@dataclass(eq=False)
class Claim:
    """One use of the machine; ``what`` is shown to whoever is refused ("job 12", "framing")."""

    what: str
    #: Shared claims of the same ``what`` may overlap (jog commands queue behind each other).
    shared: bool = False


class MachineUse:
    """Who holds the machine right now. Loop-thread only; never awaits."""

    def __init__(self) -> None:
        self._claims: list[Claim] = []

    @property
    def holder(self) -> str | None:
        """What holds the machine (the first claim), or None when it is free."""
        return self._claims[0].what if self._claims else None

    @property
    def busy(self) -> bool:
        return bool(self._claims)

    def claim(self, what: str, *, shared: bool = False) -> Claim:
        """Take the machine for ``what`` or raise 409 ``machine_busy``. Call it right after the
        caller's own checks, with no ``await`` between them and this call."""
        if self._claims and not (
            shared and all(c.shared and c.what == what for c in self._claims)
        ):
            holder = self._claims[0].what
            raise errors.MachineBusy(
                f"The machine is in use ({holder}); wait until it ends or stop it first.",
                details={"in_use": holder},
            )
        claim = Claim(what, shared)
        self._claims.append(claim)
        return claim

    def release(self, claim: Claim | None) -> None:
        """Give a claim back (idempotent: releasing twice or None does nothing)."""
        if claim is not None:
            with contextlib.suppress(ValueError):
                self._claims.remove(claim)

    @contextlib.contextmanager
    def using(self, what: str, *, shared: bool = False) -> Iterator[Claim]:
        """Hold the machine for the duration of a ``with`` block (a command and its answer)."""
        claim = self.claim(what, shared=shared)
        try:
            yield claim
        finally:
            self.release(claim)
