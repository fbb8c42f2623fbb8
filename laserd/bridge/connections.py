"""The bridge's connections before a session: who may connect, and the wait for a person.

A connection from an address outside ``[bridge] allow`` is closed at once. One inside waits,
holding nothing: its bytes are read and dropped (so a client that leaves is noticed) until it
is accepted, rejected, times out or goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: What a connection's ``accepted`` future holds when it will not become a session.
REJECTED = object()


@dataclass(eq=False)
class Connection:
    id: int
    peer: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    connected_mono: float = field(default_factory=time.monotonic)
    #: Resolved with the accepting principal (None: the start button) or REJECTED.
    accepted: asyncio.Future[object] | None = None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "peer": self.peer,
            "waiting_s": round(time.monotonic() - self.connected_mono, 1),
        }



def allowed(host: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether a peer address is in one of the allowed networks (IPv4-mapped IPv6 too)."""
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


async def wait_for_acceptance(c: Connection, timeout_s: float) -> object:
    """Until accepted (the principal, or None for the start button), rejected, timed
    out or closed by the client; bytes meanwhile are read and dropped (holding nothing,
    answering nothing)."""
    assert c.accepted is not None
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not c.accepted.done():
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            c.writer.write(b"[MSG:laserd: nobody accepted the connection in time]\r\n")
            c.accepted.set_result(REJECTED)
            return REJECTED
        read: asyncio.Future[Any] = asyncio.ensure_future(c.reader.read(4096))
        waiting: set[asyncio.Future[Any]] = {read, c.accepted}
        done, _ = await asyncio.wait(waiting, timeout=left,
                                     return_when=asyncio.FIRST_COMPLETED)
        if read in done:
            try:
                data = read.result()
            except (ConnectionError, OSError):
                data = b""
            if not data:
                log.info("bridge: %s left before it was accepted", c.peer)
                if not c.accepted.done():
                    c.accepted.set_result(REJECTED)
                return REJECTED
        else:
            read.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await read
    return c.accepted.result()


def keepalive(writer: asyncio.StreamWriter, timeout_s: float) -> None:
    """Find a vanished peer (asleep, out of Wi-Fi) within about ``timeout_s``: TCP keepalive
    probes on a silent connection, and a limit on how long sent data may stay unacknowledged."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    step = max(1, int(timeout_s / 4))
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, step)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, step)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(timeout_s * 1000))
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
