"""The real ``laserd serve`` process against a NOTIFY_SOCKET: readiness, watchdog, signals.

Each test starts its own daemon on a free loopback port with a temporary state folder.
Timing bounds are deliberately loose (a busy 2-core machine); the figures are measured by
tests/bench/bench_daemon_lifecycle.py.
"""

from __future__ import annotations

import ctypes
import itertools
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from laserd.db import bundled_migrations
from tests.daemon.harness import Daemon, Message

pytestmark = pytest.mark.slow

SCHEMA_VERSION = max(m.version for m in bundled_migrations())


@pytest.fixture
def daemon(tmp_path: Path):
    made: list[Daemon] = []

    def make(**kw) -> Daemon:
        d = Daemon(tmp_path / f"d{len(made)}", **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def test_ready_only_after_migrations_and_http_then_stopping_on_sigterm(daemon):
    probe: dict[str, object] = {}
    lock = threading.Lock()

    def at_ready(msg: Message) -> None:
        # Runs in the listener thread the moment READY=1 arrives: the daemon must already be
        # fully usable, not about to be.
        if msg.fields.get("READY") == "1" and "health" not in probe:
            with lock:
                probe["health"] = d.health(timeout_s=5)
                probe["schema"] = d.db_query("PRAGMA user_version")[0][0]

    d = daemon(on_message=at_ready).start()
    d.wait_ready()
    with lock:
        status, body = probe["health"]
        assert status == 200 and body["db"] == "ok"
        assert probe["schema"] == SCHEMA_VERSION

    assert d.stop(timeout_s=30) == 0
    raw = d.listener.raw()
    keys = [next(iter(m.fields)) for m in d.listener.messages]
    assert raw[0].startswith("STATUS=starting")
    assert keys.count("READY") == 1
    assert "STOPPING" in keys
    assert keys.index("READY") < keys.index("STOPPING")
    ready_msg = d.listener.with_key("READY")[0]
    assert "STATUS=" in ready_msg.raw  # systemctl status shows something useful at once
    stopping_at = d.listener.with_key("STOPPING")[0].at
    assert all(m.at <= stopping_at for m in d.listener.with_key("WATCHDOG"))
    assert "stopped" in d.log_tail()


def test_without_watchdog_usec_no_pings_are_sent(daemon):
    d = daemon().start()
    d.wait_ready()
    time.sleep(1.0)
    assert d.stop() == 0
    assert d.listener.with_key("WATCHDOG") == []


def test_watchdog_pings_at_half_the_interval_and_none_while_the_loop_is_stalled(daemon):
    d = daemon(watchdog_usec=1_000_000).start()  # WatchdogSec=1s: a ping every 0.5 s
    ready = d.wait_ready()
    deadline = time.monotonic() + 30
    while len(d.listener.with_key("WATCHDOG")) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    pings = [m.at for m in d.listener.with_key("WATCHDOG")]
    assert len(pings) >= 6
    assert pings[0] >= ready.at
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert 0.3 <= statistics.median(gaps) <= 1.2, gaps

    status, body = d.request("POST", "/api/v1/debug/stall", {"seconds": 3.0})
    assert status == 202, body
    answered = time.monotonic()
    time.sleep(3.5)
    # Margins for a busy machine: a ping sent just before the stall may be read a little late.
    stall_from, stall_to = answered + body["starts_in_s"] + 0.5, answered + 3.0
    during = [m.at for m in d.listener.with_key("WATCHDOG") if stall_from <= m.at <= stall_to]
    assert during == [], "a ping left the process while its event loop was blocked"

    # Served again: pings resume, and /health answers.
    after = time.monotonic()
    deadline = after + 10
    while not [m for m in d.listener.with_key("WATCHDOG") if m.at > after]:
        assert time.monotonic() < deadline, "watchdog pings did not resume"
        time.sleep(0.1)
    assert d.health()[0] == 200
    assert d.stop() == 0
    assert "watchdog ping withheld" in d.log_tail(200)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signals_exit_zero_within_seconds(daemon, sig):
    d = daemon().start()
    d.wait_ready()
    t0 = time.monotonic()
    d.signal(sig)
    assert d.proc.wait(timeout=20) == 0
    assert time.monotonic() - t0 < 15
    assert d.listener.with_key("STOPPING")
    name = signal.Signals(sig).name
    assert f"{name}: stopping" in d.log_tail()


def test_sighup_applies_reloadable_keys_and_names_the_rest(daemon):
    d = daemon().start()
    d.wait_ready()
    origin = "http://bench.example"
    status, _ = _preflight(d, origin)
    assert status == 403  # not an allowed origin yet

    d.config = {"server": {"cors_origins": [origin], "log_level": "debug", "max_json_kb": 512}}
    d.write_config()
    d.signal(signal.SIGHUP)
    d.listener.wait_for("RELOADING", "1", timeout_s=20)
    deadline = time.monotonic() + 20
    while len(d.listener.with_key("READY")) < 2:
        assert time.monotonic() < deadline, d.listener.raw()
        time.sleep(0.05)

    status, headers = _preflight(d, origin)
    assert status == 204 and headers.get("Access-Control-Allow-Origin") == origin
    log = d.log_tail(100)
    assert "reloaded: server.log_level, server.cors_origins" in log
    assert "only applied after a restart: server.max_json_kb" in log
    assert d.poll() is None
    assert d.stop() == 0


def test_sighup_with_a_broken_config_keeps_the_running_settings(daemon):
    d = daemon().start()
    d.wait_ready()
    (d.workdir / "laserd.toml").write_text("[server]\nport = 'not a number'\n")
    d.signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while "reload refused" not in d.log_tail(100):
        assert time.monotonic() < deadline, d.log_tail()
        time.sleep(0.05)
    assert d.health()[0] == 200
    assert d.stop() == 0


def test_port_in_use_fails_start_with_status_and_exit_1(daemon):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        d = daemon(port=busy.getsockname()[1]).start()
        assert d.proc.wait(timeout=60) == 1
    assert d.listener.with_key("READY") == []
    statuses = [m.fields["STATUS"] for m in d.listener.with_key("STATUS")]
    assert any(s.startswith("start failed") for s in statuses), statuses
    assert "cannot start" in d.log_tail()


def _mdwe() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        raise OSError(ctypes.get_errno(), "PR_SET_MDWE unavailable")


def _mdwe_supported() -> bool:
    check = "import ctypes; raise SystemExit(ctypes.CDLL(None).prctl(65, 1, 0, 0, 0))"
    return subprocess.run([sys.executable, "-c", check], timeout=30).returncode == 0


def test_daemon_runs_under_memory_deny_write_execute(daemon):
    """The unit sets MemoryDenyWriteExecute=yes; the same kernel rule, applied by prctl."""
    if not _mdwe_supported():
        pytest.skip("kernel older than 6.3: PR_SET_MDWE unavailable")
    d = daemon(preexec=_mdwe).start()
    d.wait_ready()
    assert d.health()[0] == 200
    assert d.stop() == 0


def _preflight(d: Daemon, origin: str) -> tuple[int, dict[str, str]]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(d.base_url + "/api/v1/health", method="OPTIONS")
    req.add_header("Origin", origin)
    req.add_header("Access-Control-Request-Method", "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)
