"""Every ``web.AppKey`` of the running app: the table of contents of laserd.

A service is built by its cleanup context in ``laserd.app`` and stored under its key here;
handlers read ``request.app[KEY]``. Services themselves never see the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiosqlite
from aiohttp import web

from laserd.events import EventHub
from laserd.settings import Settings

if TYPE_CHECKING:  # imported for the types only; avoids import cycles at start-up
    from laserd.api.routing import RouteSpec
    from laserd.hardware import Hardware

SETTINGS = web.AppKey("settings", Settings)
HARDWARE: web.AppKey[Hardware] = web.AppKey("hardware")
DB = web.AppKey("db", aiosqlite.Connection)
HUB = web.AppKey("hub", EventHub)
ROUTE_SPECS: web.AppKey[list[RouteSpec]] = web.AppKey("route_specs")
STARTED_MONO = web.AppKey("started_monotonic", float)
SERVER_SECRET = web.AppKey("server_secret", bytes)

# Services added by later layers. Typed as Any here to keep this module import-light; each
# service module documents its class.
AUTHENTICATOR: web.AppKey[Any] = web.AppKey("authenticator")  # laserd.auth.service.Authenticator
ACCOUNTS: web.AppKey[Any] = web.AppKey("accounts")  # laserd.auth.accounts.Accounts
RATE_LIMITS: web.AppKey[Any] = web.AppKey("rate_limits")  # laserd.auth.ratelimits.RateLimits
MAILER: web.AppKey[Any] = web.AppKey("mailer")  # laserd.auth.mail.Mailer
AUDIT: web.AppKey[Any] = web.AppKey("audit")  # laserd.store.audit.AuditLog
PROCESSING: web.AppKey[Any] = web.AppKey("processing")  # laserd.files.Processing
SIMULATOR: web.AppKey[Any] = web.AppKey("simulator")  # laserd.grbl.simulator.SimulatedGrbl
LINK: web.AppKey[Any] = web.AppKey("link")  # laserd.grbl.link.GrblLink
SAFETY: web.AppKey[Any] = web.AppKey("safety")  # laserd.safety.SafetySupervisor
MACHINE: web.AppKey[Any] = web.AppKey("machine")  # laserd.machine.Machine
JOBS: web.AppKey[Any] = web.AppKey("jobs")  # laserd.jobs.JobRunner
SETUP_CODE: web.AppKey[Any] = web.AppKey("setup_code")  # laserd.auth.setup.SetupCode
