"""What a SIGHUP (``systemctl reload laserd``) can change in the running daemon.

The new settings are copied *into* the running :class:`~laserd.settings.Settings` object,
not swapped for it: every service and middleware holds that same object (``app[SETTINGS]``)
and reads these keys per request, so an in-place change reaches them all at once. The
services that cache derived values (rate-limit windows, bcrypt cost, token lifetimes, mail)
are told through ``Accounts.reload``. Everything else is read once at start (bind address,
paths, pins, the controller, the token pepper) and is reported as needing a restart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from laserd.keys import ACCOUNTS
from laserd.logs import set_level
from laserd.settings import AuthSettings, MailSettings, Settings

log = logging.getLogger(__name__)

#: ``section.key`` names applied at run time.
RELOADABLE: frozenset[str] = frozenset(
    {"server.log_level", "server.cors_origins", "server.access_log"}
    | {"server.max_websockets", "server.max_websockets_per_address"}
    | {"server.max_connections", "server.max_connections_per_address"}
    | {f"auth.{k}" for k in AuthSettings.model_fields if k != "jwt_secret"}
    | {f"mail.{k}" for k in MailSettings.model_fields}
)


@dataclass
class ReloadResult:
    applied: list[str] = field(default_factory=list)
    needs_restart: list[str] = field(default_factory=list)


def _leaves(settings: Settings) -> dict[str, Any]:
    """``section.key`` → value; nested tables and lists are compared whole."""
    out: dict[str, Any] = {}
    for section_name in Settings.model_fields:
        section = getattr(settings, section_name)
        for key in type(section).model_fields:
            out[f"{section_name}.{key}"] = getattr(section, key)
    return out


def apply_settings(current: Settings, new: Settings) -> ReloadResult:
    """Copy the reloadable keys that differ from ``new`` into ``current``; name the rest.

    Only key names are returned (and logged), never values: some are secrets.
    """
    old, fresh = _leaves(current), _leaves(new)
    result = ReloadResult()
    for name, value in fresh.items():
        if old[name] == value:
            continue
        if name in RELOADABLE:
            section, key = name.split(".", 1)
            setattr(getattr(current, section), key, value)
            result.applied.append(name)
        else:
            result.needs_restart.append(name)
    return result


def reload_app(app: web.Application, current: Settings, new: Settings) -> ReloadResult:
    """Apply ``new`` to the running app and log what changed and what waits for a restart."""
    result = apply_settings(current, new)
    if "server.log_level" in result.applied:
        set_level(current.server.log_level)
    if any(n.startswith(("auth.", "mail.")) for n in result.applied):
        accounts = app.get(ACCOUNTS)
        if accounts is not None:
            accounts.reload(current)
    if result.applied:
        log.info("reloaded: %s", ", ".join(result.applied))
    else:
        log.info("reloaded: nothing that applies at run time changed")
    if result.needs_restart:
        log.warning("changed but only applied after a restart: %s", ", ".join(result.needs_restart))
    return result
