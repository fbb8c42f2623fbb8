"""SIGHUP reload (laserd.reload) on the real app: what applies at once, what needs a restart."""

from __future__ import annotations

import logging
from pathlib import Path

from laserd.app import create_app
from laserd.keys import ACCOUNTS, RATE_LIMITS, SETTINGS
from laserd.reload import RELOADABLE, apply_settings, reload_app
from tests.conftest import bare_hardware, make_settings


def test_reloadable_keys_are_copied_in_place_and_the_rest_named(tmp_path: Path):
    current = make_settings(tmp_path)
    server = current.server
    new = make_settings(
        tmp_path,
        server={"log_level": "debug", "cors_origins": ["http://ui.local"], "port": 9090},
        auth={"login_ip_max_failures": 3},
        machine={"port": "/dev/ttyACM0"},
    )
    result = apply_settings(current, new)
    assert result.applied == [
        "server.log_level",
        "server.cors_origins",
        "auth.login_ip_max_failures",
    ]
    assert result.needs_restart == ["server.port", "machine.port"]
    assert current.server is server  # same object: every holder sees the change
    assert server.log_level == "debug" and server.cors_origins == ["http://ui.local"]
    assert current.auth.login_ip_max_failures == 3
    assert current.server.port == 8080 and current.machine.port == "/dev/ttyUSB0"


def test_unchanged_settings_apply_nothing(tmp_path: Path):
    result = apply_settings(make_settings(tmp_path), make_settings(tmp_path))
    assert result.applied == [] and result.needs_restart == []


def test_secrets_are_never_reloaded_and_never_logged(tmp_path: Path, caplog):
    current = make_settings(tmp_path)
    new = make_settings(tmp_path, auth={"jwt_secret": "s" * 40}, mail={"password": "hunter22"})
    caplog.set_level(logging.INFO, logger="laserd.reload")
    app = create_app(current, hardware=bare_hardware())
    result = reload_app(app, current, new)
    assert "auth.jwt_secret" not in RELOADABLE
    assert result.needs_restart == ["auth.jwt_secret"]
    assert result.applied == ["mail.password"]
    assert "hunter22" not in caplog.text and "s" * 40 not in caplog.text
    assert "auth.jwt_secret" in caplog.text


async def test_reload_reaches_the_rate_limits_and_log_level_of_a_running_app(
    aiohttp_client, tmp_path: Path
):
    settings = make_settings(tmp_path / "state")
    app = create_app(settings, hardware=bare_hardware())
    await aiohttp_client(app)  # cleanup contexts entered: accounts and limits exist
    root_level = logging.getLogger().level
    try:
        new = make_settings(
            tmp_path / "state",
            server={"log_level": "warning"},
            auth={"login_ip_max_failures": 2, "account_max_failures": 3},
        )
        reload_app(app, app[SETTINGS], new)
        limits = app[RATE_LIMITS]
        assert limits.login_ip.limit == 2
        assert limits.account.max_failures == 3
        assert app[ACCOUNTS].settings.auth.login_ip_max_failures == 2
        assert logging.getLogger().level == logging.WARNING
    finally:
        logging.getLogger().setLevel(root_level)
