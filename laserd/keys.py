"""Every ``web.AppKey`` of the running app: the table of contents of laserd.

A service is built by its cleanup context in ``laserd.app`` and stored under its key here;
handlers read ``request.app[KEY]``. Services themselves never see the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiosqlite
from aiohttp import web

from laserd.events import EventHub
from laserd.settings import Settings

if TYPE_CHECKING:  # imported for the types only; avoids import cycles at start-up
    from laserd.api.routing import RouteSpec
    from laserd.auth.accounts import Accounts
    from laserd.auth.attempt_limits import RateLimits
    from laserd.auth.mail import Mailer
    from laserd.auth.service import Authenticator
    from laserd.auth.setup import SetupCode
    from laserd.bridge.discovery import Discovery
    from laserd.bridge.server import Bridge
    from laserd.grbl.link import GrblLink
    from laserd.grbl.sim import SimulatedGrbl
    from laserd.hardware import Hardware
    from laserd.jobs import JobRunner
    from laserd.library.processing import Processing
    from laserd.library.service import FileLibrary
    from laserd.machine_control import Machine
    from laserd.safety import SafetySupervisor
    from laserd.store.audit import AuditLog

SETTINGS = web.AppKey("settings", Settings)
HARDWARE: web.AppKey[Hardware] = web.AppKey("hardware")
DB = web.AppKey("db", aiosqlite.Connection)
HUB = web.AppKey("hub", EventHub)
ROUTE_SPECS: web.AppKey[list[RouteSpec]] = web.AppKey("route_specs")
STARTED_MONO = web.AppKey("started_monotonic", float)
SERVER_SECRET = web.AppKey("server_secret", bytes)

# Services added by later layers. Their classes are imported for the type checker only, so
# this module stays import-light; the string annotations are never evaluated at run time.
AUTHENTICATOR: web.AppKey[Authenticator] = web.AppKey("authenticator")
ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts")
RATE_LIMITS: web.AppKey[RateLimits] = web.AppKey("rate_limits")
MAILER: web.AppKey[Mailer] = web.AppKey("mailer")
AUDIT: web.AppKey[AuditLog] = web.AppKey("audit")
PROCESSING: web.AppKey[Processing] = web.AppKey("processing")
LIBRARY: web.AppKey[FileLibrary] = web.AppKey("library")
SIMULATOR: web.AppKey[SimulatedGrbl] = web.AppKey("simulator")
LINK: web.AppKey[GrblLink] = web.AppKey("link")
SAFETY: web.AppKey[SafetySupervisor] = web.AppKey("safety")
MACHINE: web.AppKey[Machine] = web.AppKey("machine")
JOBS: web.AppKey[JobRunner] = web.AppKey("jobs")
SETUP_CODE: web.AppKey[SetupCode] = web.AppKey("setup_code")
DISCOVERY: web.AppKey[Discovery] = web.AppKey("discovery")
BRIDGE: web.AppKey[Bridge] = web.AppKey("bridge")
