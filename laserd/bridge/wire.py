"""GRBL's serial protocol as a client's byte stream: lines and real-time bytes, picked apart.

GRBL acts on ``?`` ``!`` ``~`` 0x18 and every byte >= 0x80 the moment it arrives, wherever it
is in the stream (inside a line, inside a comment); everything else collects into lines ended
by ``\\n`` or ``\\r``. :class:`ClientStream` does the same with a client's bytes, so the
bridge sees exactly what the board would: the real-time bytes in arrival order, the lines
without them.
"""

from __future__ import annotations

REALTIME_ASCII = frozenset(b"?!~\x18")
#: A line longer than this without an end is not GRBL traffic; it is cut and answered as GRBL
#: answers an overlong line (error:11).
MAX_PENDING_LINE = 256


class ClientStream:
    """Splits a client's bytes into events in arrival order: ``("rt", byte)``,
    ``("line", text)`` (decoded as Latin-1) and ``("overlong", "")``."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overlong = False

    def feed(self, data: bytes) -> list[tuple[str, int | str]]:
        out: list[tuple[str, int | str]] = []
        buf = self._buf
        for b in data:
            if b in REALTIME_ASCII or b >= 0x80:
                out.append(("rt", b))
            elif b in (0x0A, 0x0D):
                if self._overlong:
                    out.append(("overlong", ""))
                    self._overlong = False
                else:
                    # As GRBL: every terminator ends a line, an empty one too (answered ok),
                    # so a sender ending lines with "\r\n" gets two answers from the board.
                    out.append(("line", buf.decode("latin-1")))
                buf.clear()
            else:
                if len(buf) >= MAX_PENDING_LINE:
                    self._overlong = True
                    buf.clear()
                if not self._overlong:
                    buf.append(b)
        return out
