"""The error raised when a G-code file cannot be streamed safely."""

from __future__ import annotations

from typing import TypedDict

from laserd.errors import LaserdError


class Issue(TypedDict):
    """One refusal: the 1-based line of the uploaded file and what is wrong with it."""

    line: int
    message: str


class LineError(Exception):
    """Internal: one line is refused; the reader adds the line number and collects it."""


class GcodeError(LaserdError):
    """The file holds lines GRBL would refuse or that are unsafe to stream.

    ``issues`` (also the error's ``details``) lists up to :data:`MAX_ISSUES` problems with
    their line numbers, so the user can fix them all in one go instead of one per upload.
    """

    status, code, default_message = 422, "invalid_gcode", "The G-code cannot be streamed."

    def __init__(self, issues: list[Issue], *, truncated: bool = False) -> None:
        self.issues = issues
        self.truncated = truncated
        first = issues[0] if issues else {"line": 0, "message": "unknown problem"}
        more = len(issues) - 1
        summary = f"line {first['line']}: {first['message']}"
        if more > 0 or truncated:
            summary += f" (and {more}{'+' if truncated else ''} more)"
        super().__init__(summary, details=issues)
