"""Where the current request came from, for the services below the web layer.

The request-id middleware (``laserd.api.middleware``) builds one :class:`RequestOrigin` per
request and keeps it in a context variable for the time the request's handler runs, the way
it keeps the request id for logging. Services that record who did something or limit by
address (the audit log, sign-in, registration, password reset, setup) read it with
:func:`current_origin` and so never see an HTTP request: they take plain values and can be
called the same way from the command line or a test.

Work started by a request (a task it creates) inherits the origin, as it inherits the
request id of its log lines. Code that runs outside any request sees :data:`NO_ORIGIN`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestOrigin:
    #: The client's address (``X-Forwarded-For`` counts only from a trusted proxy).
    address: str = ""
    #: The request id of the request's log lines and error bodies.
    request_id: str = ""
    #: The ``User-Agent`` header as sent (shown in the list of a user's sign-ins).
    user_agent: str = ""


#: Outside any request: the system itself (a job's end, a safety trip, the command line).
NO_ORIGIN = RequestOrigin()

_current: ContextVar[RequestOrigin] = ContextVar("request_origin", default=NO_ORIGIN)


def current_origin() -> RequestOrigin:
    """The origin of the request being served, or :data:`NO_ORIGIN` outside one."""
    return _current.get()


@contextmanager
def origin_scope(origin: RequestOrigin) -> Iterator[None]:
    """Make ``origin`` the current one for the code inside the ``with`` block."""
    token = _current.set(origin)
    try:
        yield
    finally:
        _current.reset(token)
