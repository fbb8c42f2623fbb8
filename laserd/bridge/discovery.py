"""mDNS/DNS-SD announcement of laserd (API.md, "LAN presence").

Two services point at the web server: ``_http._tcp`` (browsers, "Bonjour" bookmarks) and
``_laserd._tcp`` (laserd-aware tools). Their TXT records say where things are (``path=/``,
``api=/api/v1``), which ``version`` runs and a stable ``uuid`` that tells two appliances
apart even when both are called "laserd". Nothing in them is a secret: anyone on the LAN can
read them, so no key, token or setup code is ever put there.

The announced addresses follow the host: DHCP renewals, Wi-Fi roaming and a cable plugged in
late all change them, so they are read again every ``address_poll_s`` and the records are
updated (which re-announces them) when the set changed. Stopping withdraws the services
(goodbye packets with TTL 0) so browsers forget the appliance at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import uuid as uuidmod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ifaddr
from zeroconf import InterfaceChoice, IPVersion, NonUniqueNameException
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from laserd import __version__

log = logging.getLogger(__name__)

HTTP_TYPE = "_http._tcp.local."
LASERD_TYPE = "_laserd._tcp.local."
UUID_FILE = "instance_uuid"
_LABEL_RE = re.compile(r"[^a-z0-9-]+")

AddressSource = Callable[[], list[str]]


def instance_uuid(state_dir: Path) -> str:
    """This appliance's stable identity: generated once into the state folder, then read.

    It is not a secret (it is announced to the LAN), only stable: reinstalling the software
    keeps it as long as the state folder survives.
    """
    path = state_dir / UUID_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
        return str(uuidmod.UUID(text))
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    value = str(uuidmod.uuid4())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value + "\n", encoding="ascii")
    os.replace(tmp, path)
    return value


def host_label(name: str) -> str:
    """A DNS label from the configured name: lower case letters, digits and hyphens."""
    label = _LABEL_RE.sub("-", name.strip().lower()).strip("-")
    return label[:63] or "laserd"


def host_name(name: str) -> str:
    """The ``.local`` host name people type: ``laserd.local``."""
    return f"{host_label(name)}.local"


def interface_addresses(only: Sequence[str] = ()) -> list[str]:
    """The host's unicast addresses worth announcing, sorted (so a change is a set change).

    With ``only`` (addresses from the settings), just those that the host really has.
    Otherwise every IPv4 and global/link-local IPv6 address except loopback; loopback is
    announced only when the host has nothing else (a machine with no network yet).
    """
    found: set[str] = set()
    loopback: set[str] = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            # IPv6 comes as (address, flowinfo, scope_id)
            text = ip.ip[0] if isinstance(ip.ip, tuple) else ip.ip
            try:
                addr = ipaddress.ip_address(text)
            except ValueError:
                continue
            if addr.is_loopback:
                loopback.add(str(addr))
            elif not addr.is_multicast and not addr.is_unspecified:
                found.add(str(addr))
    if only:
        wanted = {str(ipaddress.ip_address(a)) for a in only}
        return sorted((found | loopback) & wanted)
    return sorted(found or loopback)


@dataclass(frozen=True)
class Announcement:
    """What is announced; plain data so tests and the UI can show it."""

    name: str
    host: str  # "laserd.local"
    port: int
    uuid: str
    version: str = __version__

    @property
    def txt(self) -> dict[str, str]:
        return {"path": "/", "api": "/api/v1", "version": self.version, "uuid": self.uuid}


class Discovery:
    """Registers the two services with python-zeroconf and keeps their addresses current."""

    def __init__(
        self,
        announcement: Announcement,
        *,
        interfaces: Sequence[str] = (),
        address_poll_s: float = 5.0,
        addresses: AddressSource | None = None,
    ) -> None:
        self.announcement = announcement
        self._interfaces = list(interfaces)
        self._poll_s = address_poll_s
        self._addresses: AddressSource = addresses or (
            lambda: interface_addresses(self._interfaces)
        )
        self._zc: AsyncZeroconf | None = None
        self._infos: list[AsyncServiceInfo] = []
        self._current: list[str] = []
        self._task: asyncio.Task[None] | None = None
        #: Set once both services are registered (tests and the status line wait for it).
        self.registered = asyncio.Event()
        #: How many times the records were updated for an address change.
        self.updates = 0

    @property
    def addresses(self) -> list[str]:
        return list(self._current)

    async def start(self) -> None:
        """Start announcing in the background: probing takes about a second and start-up
        (the web server, the controller) must not wait for it."""
        self._task = asyncio.create_task(self._run(), name="mdns-discovery")

    async def close(self) -> None:
        """Withdraw the services (goodbye packets) and close the sockets."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        zc = self._zc
        self._zc = None
        if zc is None:
            return
        try:
            if self._infos:
                await asyncio.wait_for(zc.async_unregister_all_services(), 5)
        except Exception as exc:  # the network went away: nothing left to tell
            log.info("mDNS: withdrawing the services failed: %s", exc)
        finally:
            await zc.async_close()
            self._infos = []

    def _info(
        self, type_: str, addresses: list[str], name: str | None = None
    ) -> AsyncServiceInfo:
        a = self.announcement
        return AsyncServiceInfo(
            type_,
            name or f"{a.name}.{type_}",
            port=a.port,
            properties=a.txt,
            server=f"{a.host}.",
            parsed_addresses=addresses,
        )

    async def _run(self) -> None:
        try:
            await self._register()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("mDNS: announcing laserd failed; it stays reachable by address")
            return
        failing: str | None = None  # the last failure, said once until it changes or ends
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self._refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if str(exc) != failing:
                    log.warning("mDNS: updating the announced addresses failed: %s", exc)
                failing = str(exc)
            else:
                if failing is not None:
                    log.info("mDNS: the announced addresses are up to date again")
                failing = None

    async def _register(self) -> None:
        interfaces = list(self._interfaces) if self._interfaces else InterfaceChoice.All
        self._zc = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.All)
        self._current = self._addresses()
        for type_ in (HTTP_TYPE, LASERD_TYPE):
            info = self._info(type_, self._current)
            try:
                task = await self._zc.async_register_service(info, allow_name_change=True)
                await task
            except NonUniqueNameException:
                log.warning("mDNS: %s is taken on this network", info.name)
                continue
            self._infos.append(info)
        log.info(
            "mDNS: announced as %s (http://%s:%d/) on %s",
            self.announcement.name, self.announcement.host, self.announcement.port,
            ", ".join(self._current) or "no address yet",
        )
        self.registered.set()

    async def _refresh(self) -> None:
        """Re-announce with the new addresses when the host's set changed."""
        now = self._addresses()
        if now == self._current or self._zc is None:
            return
        log.info("mDNS: addresses changed %s → %s; re-announcing", self._current, now)
        self._current = now
        new_infos = []
        for old in self._infos:
            info = self._info(old.type, now, old.name)  # probing may have renamed it
            task = await self._zc.async_update_service(info)
            await task
            new_infos.append(info)
        self._infos = new_infos
        self.updates += 1
