"""mDNS discovery with a real zeroconf browser in the test process (issue 17, step 1).

Everything runs on the loopback interface: the app announces on 127.0.0.1 only
(``[discovery] interfaces``) and the browser listens there too, so the test needs no LAN,
sends nothing beyond the machine and works the same in CI. Each test uses a name of its own,
so suites running side by side on one machine do not answer each other's queries.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from laserd import __version__
from laserd.app import create_app
from laserd.bridge.discovery import (
    HTTP_TYPE,
    LASERD_TYPE,
    Announcement,
    Discovery,
    host_label,
    instance_uuid,
)
from laserd.keys import DISCOVERY
from laserd.settings import ConfigError
from tests.conftest import bare_hardware, make_settings

LOOPBACK = ["127.0.0.1"]


def unique_name() -> str:
    return f"laserd-test-{uuid.uuid4().hex[:8]}"


class Browser:
    """A zeroconf browser on the loopback that records what it hears of one instance."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.zc = AsyncZeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only)
        self.events: list[tuple[str, str, ServiceStateChange]] = []
        self.changed = asyncio.Event()
        self.browser: AsyncServiceBrowser | None = None

    def start(self, *types: str) -> None:
        def handler(
            zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
        ) -> None:
            if name.startswith(self.name + "."):
                self.events.append((service_type, name, state_change))
                self.changed.set()

        self.browser = AsyncServiceBrowser(self.zc.zeroconf, list(types), handlers=[handler])

    async def wait_for(self, state: ServiceStateChange, type_: str, timeout_s: float = 15) -> None:
        async def seen() -> None:
            while not any(t == type_ and s == state for t, _, s in self.events):
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(seen(), timeout_s)

    async def resolve(self, type_: str) -> AsyncServiceInfo:
        info = AsyncServiceInfo(type_, f"{self.name}.{type_}")
        assert await info.async_request(self.zc.zeroconf, 5000), f"{type_} did not resolve"
        return info

    async def close(self) -> None:
        if self.browser is not None:
            await self.browser.async_cancel()
        await self.zc.async_close()


@pytest.fixture
async def browser_factory() -> Any:
    made: list[Browser] = []

    def make(name: str) -> Browser:
        b = Browser(name)
        made.append(b)
        return b

    yield make
    for b in made:
        await b.close()


def txt(info: AsyncServiceInfo) -> dict[str, str]:
    return {k.decode(): (v or b"").decode() for k, v in info.properties.items()}


async def test_the_app_is_found_by_a_browser_and_withdrawn_at_stop(
    aiohttp_client: Any, tmp_path: Path, browser_factory: Any
) -> None:
    name = unique_name()
    settings = make_settings(
        tmp_path / "state",
        server={"port": 8099},
        discovery={"enabled": True, "name": name, "interfaces": LOOPBACK},
    )
    browser = browser_factory(name)
    browser.start(HTTP_TYPE, LASERD_TYPE)
    client = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    await browser.wait_for(ServiceStateChange.Added, LASERD_TYPE)
    await browser.wait_for(ServiceStateChange.Added, HTTP_TYPE)

    stored_uuid = (tmp_path / "state" / "instance_uuid").read_text().strip()
    for type_ in (HTTP_TYPE, LASERD_TYPE):
        info = await browser.resolve(type_)
        assert info.port == 8099
        assert info.server == f"{name}.local."
        assert info.parsed_addresses() == ["127.0.0.1"]
        assert txt(info) == {
            "path": "/",
            "api": "/api/v1",
            "version": __version__,
            "uuid": stored_uuid,
        }

    # The UI learns the name from the public health answer.
    r = await client.get("/api/v1/health")
    assert (await r.json())["host"] == f"{name}.local"

    await client.close()  # the app's cleanup contexts run: goodbye packets
    await browser.wait_for(ServiceStateChange.Removed, LASERD_TYPE, timeout_s=5)
    await browser.wait_for(ServiceStateChange.Removed, HTTP_TYPE, timeout_s=5)


async def test_disabled_announces_nothing(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "state", discovery={"enabled": False})
    client = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    assert DISCOVERY not in client.app
    r = await client.get("/api/v1/health")
    assert (await r.json())["host"] is None
    assert not (tmp_path / "state" / "instance_uuid").exists()


async def test_an_address_change_is_announced(browser_factory: Any) -> None:
    name = unique_name()
    addresses = ["127.0.0.1"]
    disc = Discovery(
        Announcement(name, f"{name}.local", 8080, str(uuid.uuid4())),
        interfaces=LOOPBACK,
        address_poll_s=0.1,
        addresses=lambda: list(addresses),
    )
    browser = browser_factory(name)
    browser.start(LASERD_TYPE)
    await disc.start()
    try:
        await asyncio.wait_for(disc.registered.wait(), 15)
        assert (await browser.resolve(LASERD_TYPE)).parsed_addresses() == ["127.0.0.1"]
        addresses.append("127.0.0.2")  # a second address appears (DHCP, a new cable, ...)
        await browser.wait_for(ServiceStateChange.Updated, LASERD_TYPE)

        async def resolved_both() -> None:
            while True:
                info = AsyncServiceInfo(LASERD_TYPE, f"{name}.{LASERD_TYPE}")
                if await info.async_request(browser.zc.zeroconf, 1000) and sorted(
                    info.parsed_addresses()
                ) == ["127.0.0.1", "127.0.0.2"]:
                    return
                await asyncio.sleep(0.1)

        await asyncio.wait_for(resolved_both(), 10)
        assert disc.addresses == ["127.0.0.1", "127.0.0.2"]
    finally:
        await disc.close()


def test_uuid_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = instance_uuid(tmp_path)
    assert uuid.UUID(first)
    assert instance_uuid(tmp_path) == first
    (tmp_path / "instance_uuid").write_text("damaged\n")
    replaced = instance_uuid(tmp_path)
    assert replaced != first and uuid.UUID(replaced)


def test_name_becomes_a_dns_label() -> None:
    assert host_label("Workshop Laser") == "workshop-laser"
    assert host_label("laserd") == "laserd"


def test_bad_settings_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"discovery\.interfaces"):
        make_settings(tmp_path, discovery={"interfaces": ["not-an-address"]})
    with pytest.raises(ConfigError, match=r"discovery\.name"):
        make_settings(tmp_path, discovery={"name": "bad/name"})
