"""Logging set-up: the request id in every line of a request, journald when present.

The request-id middleware sets :data:`request_id_var`; a filter copies it (and the job id or
user set by other code through :data:`job_id_var` / :data:`user_var`) onto every record, so a
line logged deep inside a service still says which request it belongs to.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
job_id_var: ContextVar[str] = ContextVar("job_id", default="")
user_var: ContextVar[str] = ContextVar("user", default="")

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


#: Characters that would let a logged value forge or hide lines (newlines, escapes, C1 codes).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: str) -> str:
    """``value`` with control characters escaped: one log line stays one line."""
    return _CONTROL.sub(_escape, value)


class Multiline(str):
    """Text laserd composed itself from validated parts (a mail body): its newlines are kept,
    other control characters are still escaped."""

    __slots__ = ()


_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _printable_arg(value: object) -> object:
    if isinstance(value, Multiline):
        return _CONTROL_BUT_NEWLINE.sub(_escape, value)
    return printable(value) if isinstance(value, str) else value


class ContextFilter(logging.Filter):
    """Adds ``request_id``, ``job_id`` and ``user`` attributes to every record, and escapes
    control characters in string arguments.

    The arguments are where client-supplied text (a request path, a username as typed) enters
    a log line; a newline in one must not forge a second line in the journal or on stderr.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_printable_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _printable_arg(v) for k, v in record.args.items()}
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if not hasattr(record, "job_id"):
            record.job_id = job_id_var.get()
        if not hasattr(record, "user"):
            record.user = user_var.get()
        return True


def _journal_handler() -> logging.Handler | None:
    try:
        from laserd import systemd as sd
    except ImportError:
        return None
    try:
        return sd.journal_handler()
    except Exception:  # journald unusable: fall back to stderr
        return None


def setup_logging(level: str = "info", *, use_journal: bool = True) -> logging.Handler:
    """Configure the root logger once; return the handler in use."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_laserd", False):
            root.removeHandler(h)
    handler = _journal_handler() if use_journal else None
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(ContextFilter())
    handler._laserd = True  # type: ignore[attr-defined]  # our mark, found again on re-setup
    root.addHandler(handler)
    set_level(level)
    return handler


def set_level(level: str) -> None:
    logging.getLogger().setLevel(level.upper())
    # aiohttp's own access log is replaced by ours (see api.middleware).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
