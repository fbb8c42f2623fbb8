"""laserd.systemd against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from laserd import systemd
from laserd.events import Event, EventHub
from laserd.logs import ContextFilter, request_id_var


@pytest.fixture
def notify_sock(tmp_path: Path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield str(path), sock
    sock.close()


def _drain(sock: socket.socket) -> list[str]:
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(5)
    return out


def test_without_notify_socket_every_call_is_a_quiet_no_op():
    n = systemd.Notifier.from_env({})
    assert not n.enabled
    assert n.ready("up") is False
    assert n.watchdog() is False
    assert n.stopping() is False


def test_fields_arrive_as_key_value_lines(notify_sock):
    path, sock = notify_sock
    n = systemd.Notifier(path)
    assert n.ready("listening on 8080")
    assert sock.recv(4096).decode() == "READY=1\nSTATUS=listening on 8080"
    assert n.status("two\nlines")
    assert sock.recv(4096).decode() == "STATUS=two lines"
    n.stopping()
    assert sock.recv(4096).decode() == "STOPPING=1"
    n.watchdog()
    assert sock.recv(4096).decode() == "WATCHDOG=1"
    n.reloading()
    msg = sock.recv(4096).decode()
    assert msg.startswith("RELOADING=1\nMONOTONIC_USEC=")
    n.close()


def test_abstract_socket_name_with_at_sign():
    name = f"laserd-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        assert systemd.Notifier(f"@{name}").notify(READY=1)
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_missing_socket_path_does_not_raise(tmp_path: Path):
    n = systemd.Notifier(str(tmp_path / "absent.sock"))
    assert n.enabled
    assert n.watchdog() is False


def test_watchdog_interval_reads_usec_and_checks_pid():
    pid = str(os.getpid())
    assert systemd.watchdog_interval_s({}) is None
    assert systemd.watchdog_interval_s({"WATCHDOG_USEC": "10000000"}) == 10.0
    assert systemd.watchdog_interval_s({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": pid}) == 3.0
    other = str(os.getpid() + 1)
    assert systemd.watchdog_interval_s({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": other}) is None
    assert systemd.watchdog_interval_s({"WATCHDOG_USEC": "nonsense"}) is None
    assert systemd.watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None


def test_watchdog_from_env_pings_at_half_the_interval(notify_sock):
    path, _ = notify_sock
    n = systemd.Notifier(path)
    wd = systemd.LoopWatchdog.from_env(n, {"WATCHDOG_USEC": "4000000"})
    assert wd is not None and wd.period_s == 2.0
    silent = systemd.Notifier(None)
    assert systemd.LoopWatchdog.from_env(silent, {"WATCHDOG_USEC": "4000000"}) is None
    assert systemd.LoopWatchdog.from_env(n, {}) is None


async def test_watchdog_pings_while_loop_is_healthy_and_stops_when_it_is_blocked(notify_sock):
    path, sock = notify_sock
    wd = systemd.LoopWatchdog(systemd.Notifier(path), 0.1, max_late_s=0.3)
    wd.start()
    await asyncio.sleep(1.0)
    healthy = [m for m in _drain(sock) if m == "WATCHDOG=1"]
    assert len(healthy) >= 3

    # Block the loop on purpose, as a buggy handler would: no ping may come out of it.
    time.sleep(1.5)
    assert _drain(sock) == []
    await asyncio.sleep(0)  # the late wake-up runs now and must withhold its ping
    await asyncio.sleep(0.05)
    assert wd.stats.withheld >= 1
    assert wd.stats.worst_late_s >= 1.0

    # Once the loop is served again, pings resume.
    await asyncio.sleep(0.8)
    assert "WATCHDOG=1" in _drain(sock)
    await wd.stop()


def test_status_text_describes_job_and_link():
    assert systemd.describe_status(None, None) == "idle; controller not seen yet"
    assert (
        systemd.describe_status({"connected": True, "state": "Idle"}, None)
        == "idle; controller connected (Idle)"
    )
    text = systemd.describe_status(
        {"connected": True, "state": "Run"}, {"id": 7, "state": "running", "progress": 0.426}
    )
    assert text == "job 7 running 43%; controller connected (Run)"
    done = {"id": 7, "state": "completed", "progress": 1.0}
    assert systemd.describe_status({"connected": False}, done) == "idle; controller disconnected"


def test_status_reporter_follows_hub_and_sends_only_changes(notify_sock):
    path, sock = notify_sock
    hub = EventHub()
    reporter = systemd.StatusReporter(systemd.Notifier(path))
    hub.on(Event, reporter)
    for _ in range(5):
        hub.publish("machine", {"connected": True, "state": "Idle", "job": None})
    hub.publish("job", {"id": 3, "state": "running", "progress": 0.5})
    hub.publish("job", {"id": 3, "state": "running", "progress": 0.5})
    hub.publish("interlock", {"name": "lid", "safe": False})
    hub.publish("job", {"id": 3, "state": "completed", "progress": 1.0})
    assert _drain(sock) == [
        "STATUS=idle; controller connected (Idle)",
        "STATUS=job 3 running 50%; controller connected (Idle)",
        "STATUS=idle; controller connected (Idle)",
    ]


def test_journal_handler_sends_structured_fields():
    journal = pytest.importorskip("systemd.journal")
    sent: list[tuple[str, dict]] = []

    def sender(message, **fields):
        sent.append((message, fields))

    handler = systemd._make_journal_handler(journal, sender)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("laserd.test.journal")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("job %s started", 12, extra={"job_id": 12, "user": "ada", "request_id": "r-1"})
        logger.warning("plain line")
        token = request_id_var.set("req-from-context")
        try:
            logger.error("inside a request")
        finally:
            request_id_var.reset(token)
    finally:
        logger.removeHandler(handler)
    (msg1, f1), (msg2, f2), (msg3, f3) = sent
    assert msg1 == "job 12 started"
    assert f1["JOB_ID"] == "12" and f1["USER"] == "ada" and f1["REQUEST_ID"] == "r-1"
    assert f1["PRIORITY"] == "6" and f1["SYSLOG_IDENTIFIER"] == "laserd"
    assert f1["LOGGER"] == "laserd.test.journal"
    assert all(k.isupper() for k in f1)  # journald drops lowercase field names
    assert msg2 == "plain line" and f2["PRIORITY"] == "4"
    assert "JOB_ID" not in f2 and "REQUEST_ID" not in f2
    assert msg3 == "inside a request" and f3["REQUEST_ID"] == "req-from-context"


def test_stderr_handler_outside_systemd_and_priority_prefix_on_journal_stream():
    buf = io.StringIO()
    handler = systemd.journal_handler({}, stream=buf)
    assert isinstance(handler, logging.StreamHandler)
    record = logging.LogRecord("laserd.x", logging.ERROR, __file__, 1, "boom %s", ("a",), None)
    record.job_id = 4
    handler.handle(record)
    line = buf.getvalue().strip()
    assert line.endswith("ERROR laserd.x: boom a [job_id=4]")

    buf = io.StringIO()
    env = {"JOURNAL_STREAM": "8:1234"}
    handler = systemd._StreamFormatter(True)
    record = logging.LogRecord("laserd.x", logging.WARNING, __file__, 1, "a\nb", (), None)
    assert handler.format(record) == "<4>laserd.x: a\n<4>b"
    assert systemd.running_under_systemd(env)
    assert systemd.running_under_systemd({"INVOCATION_ID": "abc"})
    assert not systemd.running_under_systemd({})


def test_journal_handler_under_systemd_is_the_journal_one_when_journald_listens(tmp_path):
    journal = pytest.importorskip("systemd.journal")
    sock_path = tmp_path / "socket"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    try:
        env = {"INVOCATION_ID": "x"}
        handler = systemd.journal_handler(env, journal_socket=sock_path)
        assert isinstance(handler, journal.JournalHandler)
        # systemd said so, but no journald is listening (a container): stderr, not errors.
        fallback = systemd.journal_handler(env, journal_socket=tmp_path / "absent")
        assert not isinstance(fallback, journal.JournalHandler)
        assert isinstance(fallback, logging.StreamHandler)
    finally:
        sock.close()
