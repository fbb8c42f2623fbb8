"""``laserd serve``: build the app, bind the port, tell systemd, run until a signal, stop cleanly.

The order is the promise ``READY=1`` makes to systemd (and to whoever waits on it):

1. ``runner.setup()`` enters the app's cleanup contexts in order: state folders, the database
   and its migrations, the safety outputs driven to their safe state, the controller link,
   the job runner (which marks a job left ``running`` by a crash as ``interrupted``).
2. The HTTP port is bound.
3. Only then ``READY=1``, the watchdog task starts and ``STATUS=`` follows the event hub.

SIGTERM/SIGINT send ``STOPPING=1`` and run the contexts' exits in reverse: the job runner stops
a running job safely (feed hold, soft reset, laser enable off) before the link, the outputs
and the database close; the exit code is 0. SIGHUP re-reads the settings and applies what can
change at run time (:mod:`laserd.reload`: log level, CORS origins, rate limits, token and mail
settings); it logs the keys that need a restart.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import signal
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from laserd import systemd
from laserd.app import create_app
from laserd.bridge.discovery import host_name
from laserd.db import MigrationError
from laserd.descriptors import check_descriptor_budget, install_resource_handler
from laserd.events import Event
from laserd.keys import HUB
from laserd.logs import setup_logging
from laserd.netguard import GuardedSite, serving_kwargs
from laserd.reload import reload_app
from laserd.settings import ConfigError, Settings, load_settings, public_url

log = logging.getLogger(__name__)

#: Longest wait for open requests and WebSockets at shutdown before they are cut.
SHUTDOWN_TIMEOUT_S = 3.0


class Daemon:
    """One run of ``laserd serve``; separate from :func:`run` so tests can drive it in-process."""

    def __init__(
        self,
        settings: Settings,
        *,
        config_path: str | Path | None = None,
        notifier: systemd.Notifier | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self.notifier = notifier if notifier is not None else systemd.default_notifier()
        self.env = env
        self.stop_event = asyncio.Event()
        self.stop_reason = ""
        self.app: web.Application | None = None
        self.watchdog: systemd.LoopWatchdog | None = None
        self.status = systemd.StatusReporter(self.notifier)

    def request_stop(self, reason: str) -> None:
        if self.stop_event.is_set():
            log.info("%s while already stopping; still stopping", reason)
            return
        log.info("%s: stopping", reason)
        self.stop_reason = reason
        self.stop_event.set()

    def reload(self) -> None:
        """SIGHUP: re-read the configuration; a broken file changes nothing."""
        self.notifier.reloading()
        try:
            new = load_settings(self.config_path)
        except ConfigError as exc:
            log.error("reload refused, the running settings are kept: %s", exc)
            self.notifier.ready(self.status.text())
            return
        if self.app is not None:
            reload_app(self.app, self.settings, new)
        self.notifier.ready(self.status.text())

    def _say_where(self) -> None:
        """The addresses to open, in the log and on the terminal of whoever started laserd."""
        url = public_url(self.settings)
        log.info("laserd listening on %s", url)
        print(
            f"laserd is running: open {url} (local: http://127.0.0.1:{self.settings.server.port}/)",
            flush=True,
        )
        if self.settings.discovery.enabled:
            print(
                f"on the LAN (mDNS): http://{host_name(self.settings.discovery.name)}:"
                f"{self.settings.server.port}/",
                flush=True,
            )

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        self.notifier.status("starting: database, safety outputs, controller")
        self.app = create_app(self.settings)
        self.app[HUB].on(Event, self.status)
        install_resource_handler(loop)
        check_descriptor_budget(self.settings.server)
        handler_kwargs = serving_kwargs(self.settings.server)
        runner = web.AppRunner(
            self.app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S, **handler_kwargs
        )
        try:
            await runner.setup()
            if self.stop_event.is_set():  # a signal during start-up: do not go ready
                return 0
            # Connection caps and the request-head deadline sit in front of aiohttp
            # (laserd.netguard): half-open sockets must not eat the descriptors.
            site = GuardedSite(
                runner,
                self.settings.server.host,
                self.settings.server.port,
                self.settings.server,
                handler_kwargs,
            )
            await site.start()
            # What start-up built (modules, models, routes, services) lives as long as the
            # process: take it out of the cyclic collector's sight, so a full collection under
            # load scans only what requests create. bench_load measured full-collection pauses
            # of the loop of 30-170 ms before; a collection of the frozen set takes ~0 ms.
            gc.freeze()
            self._say_where()
            self.watchdog = systemd.LoopWatchdog.from_env(self.notifier, self.env)
            self.notifier.ready(self.status.text())
            if self.watchdog is not None:
                self.watchdog.start()
            await self.stop_event.wait()
        finally:
            self.status.enabled = False
            self.notifier.stopping(f"stopping ({self.stop_reason or 'error'})")
            if self.watchdog is not None:
                await self.watchdog.stop()
            # SIGTERM/SIGINT stay handled (and only logged) while the contexts close: the
            # laser is switched off in there, and a second Ctrl-C must not cut that short.
            loop.remove_signal_handler(signal.SIGHUP)
            await runner.cleanup()
        log.info("stopped")
        return 0


def check_debug_exposure(settings: Settings) -> None:
    """Debug endpoints (the mail outbox with reset tokens, simulated GPIO, a loop stall) are
    for a developer's machine: refuse them on an address the LAN can reach."""
    if not settings.server.debug:
        return
    try:
        loopback = ipaddress.ip_address(settings.server.host).is_loopback
    except ValueError:
        loopback = settings.server.host == "localhost"
    if not loopback:
        raise ConfigError(
            f"server.debug = true with server.host = {settings.server.host!r}: the debug "
            "endpoints may only listen on a loopback address (127.0.0.1 or ::1)"
        )


async def serve(settings: Settings, config_path: str | Path | None = None) -> int:
    check_debug_exposure(settings)
    return await Daemon(settings, config_path=config_path).run()


def run(settings: Settings, config_path: str | Path | None = None) -> int:
    """Exit codes: 0 after a clean stop, 2 for a configuration problem found while starting
    (for example GPIO pins that cannot be opened), 1 for anything else that stops a start."""
    setup_logging(settings.server.log_level)
    try:
        return asyncio.run(serve(settings, config_path))
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        systemd.status(f"start failed: {exc}")
        return 2
    except Exception as exc:  # a failed start says why in one line (no traceback for the known)
        if isinstance(exc, OSError | MigrationError):
            log.error("cannot start: %s", exc)
        else:
            log.exception("cannot start")
        systemd.status(f"start failed: {exc}")
        return 1
