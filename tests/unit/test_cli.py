"""The command line, run as real subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASERD_")}
    env.update(
        LASERD_CONFIG=str(state / "absent.toml"),
        LASERD_STORAGE__STATE_DIR=str(state),
        LASERD_SERVER__HOST="127.0.0.1",
        **extra,
    )
    env.pop("NOTIFY_SOCKET", None)
    return env


def laserd(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "laserd", *args],
        env=env,
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version_and_check_config(tmp_path: Path) -> None:
    env = clean_env(tmp_path, LASERD_MAIL__PASSWORD="topsecret")
    out = laserd("version", env=env)
    assert out.returncode == 0 and out.stdout.strip()
    out = laserd("check-config", env=env)
    assert out.returncode == 0
    assert '"password": "***"' in out.stdout and "topsecret" not in out.stdout


def test_invalid_config_stops_with_the_key_named(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[machine]\nbaudrate = 'fast'\n")
    out = laserd("check-config", "--config", str(cfg), env=clean_env(tmp_path))
    assert out.returncode == 2
    assert "machine.baudrate = 'fast'" in out.stderr
    out = laserd("serve", "--config", str(cfg), env=clean_env(tmp_path))
    assert out.returncode == 2 and "machine.baudrate" in out.stderr


def test_migrate_twice(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    first = laserd("migrate", env=env)
    assert first.returncode == 0 and "applied 0001_initial" in first.stdout
    again = laserd("migrate", env=env)
    assert again.returncode == 0 and "applied" not in again.stdout
    assert "schema version" in again.stdout


def test_serve_answers_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    # No hardware here: gpiozero's mock pins stand in for the GPIO, no serial port is opened.
    env = clean_env(
        tmp_path,
        LASERD_SERVER__PORT=str(port),
        LASERD_MACHINE__AUTOCONNECT="false",
        GPIOZERO_PIN_FACTORY="mock",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "laserd", "serve"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        body = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v1/health", timeout=2
                ) as r:
                    body = r.read()
                    break
            except OSError:
                time.sleep(0.05)
        assert body is not None, "laserd did not answer /health"
        assert b'"db":"ok"' in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        output = proc.stdout.read() if proc.stdout else ""
        assert f"127.0.0.1:{port}" in output
        assert "Traceback" not in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_is_prompt_with_a_websocket_open(tmp_path: Path) -> None:
    """An open live connection must not hold up a stop (systemd restarts, shutdowns)."""
    import asyncio

    import aiohttp

    port = free_port()
    env = clean_env(
        tmp_path,
        LASERD_SERVER__PORT=str(port),
        LASERD_MACHINE__AUTOCONNECT="false",
        GPIOZERO_PIN_FACTORY="mock",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "laserd", "serve"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/api/v1/health"):
                        break
                except aiohttp.ClientError:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
            async with session.ws_connect(f"http://127.0.0.1:{port}/api/v1/ws") as ws:
                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                msg = await ws.receive(timeout=10)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                assert time.monotonic() - started < 3.0

    try:
        asyncio.run(scenario())
        started = time.monotonic()
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 3.0, "the open WebSocket held up the stop"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_debug_endpoints_refused_on_a_lan_address(tmp_path: Path) -> None:
    env = clean_env(
        tmp_path,
        LASERD_SERVER__DEBUG="true",
        LASERD_SERVER__PORT=str(free_port()),
        GPIOZERO_PIN_FACTORY="mock",
    )
    env["LASERD_SERVER__HOST"] = "0.0.0.0"
    out = laserd("serve", env=env)
    assert out.returncode == 2
    assert "server.debug" in out.stderr + out.stdout
