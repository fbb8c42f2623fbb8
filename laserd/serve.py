"""``laserd serve``: build the app, bind the port, run until a signal, stop cleanly.

Owned by the systemd work from here on (readiness, watchdog, signals, reload).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys

from aiohttp import web

from laserd.app import create_app
from laserd.db import MigrationError
from laserd.logs import setup_logging
from laserd.settings import ConfigError, Settings

log = logging.getLogger(__name__)


def public_url(settings: Settings) -> str:
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname() or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port}/"


async def serve(settings: Settings) -> int:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.server.host, settings.server.port, reuse_address=True)
        await site.start()
        url = public_url(settings)
        log.info("laserd listening on %s", url)
        print(
            f"laserd is running: open {url} (local: http://127.0.0.1:{settings.server.port}/)",
            flush=True,
        )
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()
    return 0


def run(settings: Settings) -> int:
    setup_logging(settings.server.log_level)
    try:
        return asyncio.run(serve(settings))
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        print(f"laserd: {exc}", file=sys.stderr)
        return 2
    except (OSError, MigrationError) as exc:
        log.error("cannot start: %s", exc)
        print(f"laserd: cannot start: {exc}", file=sys.stderr)
        return 1
