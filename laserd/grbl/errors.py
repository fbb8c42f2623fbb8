"""Typed errors of the GRBL link.

They subclass the domain errors of :mod:`laserd.errors` so that an API handler can let them
propagate and the error middleware renders them with a sensible status. Note that
``LaserdError.code`` is the *API* error code (a string); the numeric GRBL code lives in
``grbl_code``.
"""

from __future__ import annotations

from laserd.errors import Conflict, MachineAlarm, Unavailable, ValidationFailed


class LineRefused(ValidationFailed):
    """A line cannot be sent safely (real-time character, non-ASCII byte, too long)."""

    code = "line_refused"

    def __init__(self, message: str, *, line: str, lineno: int | None = None) -> None:
        self.line = line
        self.lineno = lineno
        field = "line" if lineno is None else f"line {lineno}"
        super().__init__(message, details=[{"field": field, "message": message}])


class GrblError(Conflict):
    """The controller answered ``error:N`` to a line: it was not executed."""

    code = "grbl_error"

    def __init__(
        self, grbl_code: int, meaning: str, line: str, lineno: int | None = None
    ) -> None:
        self.grbl_code = grbl_code
        self.meaning = meaning
        self.line = line
        self.lineno = lineno
        where = f" on line {lineno}" if lineno is not None else ""
        super().__init__(
            f"GRBL error {grbl_code}{where} ({line!r}): {meaning}",
            details={
                "grbl_code": grbl_code,
                "meaning": meaning,
                "line": line,
                "lineno": lineno,
            },
        )


class GrblAlarm(MachineAlarm):
    """The controller raised ``ALARM:N`` while a command or stream was in flight."""

    def __init__(self, alarm_code: int, meaning: str) -> None:
        self.alarm_code = alarm_code
        self.meaning = meaning
        super().__init__(
            f"GRBL alarm {alarm_code}: {meaning}",
            details={"alarm_code": alarm_code, "meaning": meaning},
        )


class LinkDown(Unavailable):
    """The serial link is not connected, or was lost while a command or stream was in flight."""

    default_message = "The controller is not connected."


class ControllerReset(Conflict):
    """The controller reset (banner seen) while lines were in flight; they were discarded."""

    code = "controller_reset"
    default_message = "The controller was reset; queued lines were discarded."


class StreamCancelled(Conflict):
    """A stream was cancelled from outside (job cancel)."""

    code = "cancelled"
    default_message = "The stream was cancelled."


class LinkTimeout(Unavailable):
    """The controller did not answer in time."""

    default_message = "The controller did not answer in time."
