"""Cleanup context of the mDNS announcement: announced after start-up, withdrawn at stop."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

from aiohttp import web

from laserd.bridge.discovery import Announcement, Discovery, host_name, instance_uuid
from laserd.keys import DISCOVERY, SETTINGS


async def discovery_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    cfg = settings.discovery
    if not cfg.enabled:
        yield
        return
    announcement = Announcement(
        name=cfg.name,
        host=host_name(cfg.name),
        port=settings.server.port,
        uuid=instance_uuid(settings.storage.state_dir),
    )
    interfaces = list(cfg.interfaces)
    if not interfaces and _is_one_address(settings.server.host):
        # The web server listens on one address only: announce that one, not every interface
        # (a server bound to 127.0.0.1 is not reachable from the LAN it would be announced on).
        interfaces = [settings.server.host]
    discovery = Discovery(announcement, interfaces=interfaces, address_poll_s=cfg.address_poll_s)
    app[DISCOVERY] = discovery
    await discovery.start()
    try:
        yield
    finally:
        await discovery.close()


def _is_one_address(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a host name: leave the choice to every interface
        return False
