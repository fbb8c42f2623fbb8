"""Logging to journald from the real daemon, with the structured fields on the wire.

The daemon runs in a private mount namespace whose ``/run/systemd/journal`` is a folder of
ours, so the native-protocol datagrams that systemd-python sends to
``/run/systemd/journal/socket`` arrive at a socket this test reads: the same bytes journald
would store, without touching the machine's own journal.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.daemon.harness import (
    Daemon,
    create_admin,
    login,
    long_gcode,
    ready_file,
    serve_command,
    start_job,
    wait_machine_idle,
)

pytestmark = pytest.mark.slow

pytest.importorskip("systemd.journal", reason="systemd-python (the [systemd] extra) not installed")

NAMESPACE_SCRIPT = (
    "mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/journal && "
    'mount --bind "$LASERD_TEST_JOURNAL_DIR" /run/systemd/journal && exec "$@"'
)


def parse_journal_datagram(data: bytes) -> dict[str, str]:
    """journald's native protocol: ``KEY=value`` lines, or ``KEY\\n<u64 le size><value>\\n``."""
    fields: dict[str, str] = {}
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            fields[key.decode()] = value.decode(errors="replace")
            i = nl + 1
        else:
            (size,) = struct.unpack_from("<Q", data, nl + 1)
            start = nl + 1 + 8
            fields[line.decode()] = data[start : start + size].decode(errors="replace")
            i = start + size + 1
    return fields


class FakeJournal:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        self.folder = folder
        self.entries: list[dict[str, str]] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(folder / "socket"))
        self._sock.settimeout(0.2)
        self._stop = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self._sock.recv(1 << 20)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.entries.append(parse_journal_datagram(data))

    def matching(self, text: str) -> list[dict[str, str]]:
        with self._lock:
            return [e for e in self.entries if text in e.get("MESSAGE", "")]

    def close(self) -> None:
        self._stop = True
        self._sock.close()
        self._thread.join(timeout=5)


def _namespaces_work() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /run"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


def test_log_lines_reach_journald_with_request_and_job_fields(tmp_path: Path):
    if not _namespaces_work():
        pytest.skip("needs root and mount namespaces (unshare -m)")
    journal = FakeJournal(tmp_path / "journal")
    d = Daemon(
        tmp_path / "d",
        command=["unshare", "-m", "sh", "-c", NAMESPACE_SCRIPT, "sh", *serve_command()],
        extra_env={
            "INVOCATION_ID": "0123456789abcdef0123456789abcdef",
            "LASERD_TEST_JOURNAL_DIR": str(journal.folder),
        },
    )
    try:
        d.workdir.mkdir(parents=True)
        d.write_config()
        create_admin(d)
        d.start()
        d.wait_ready()
        token = login(d)
        import urllib.request

        req = urllib.request.Request(d.base_url + "/api/v1/auth/me")
        req.add_header("Authorization", f"Bearer {token}")
        req.add_header("X-Request-ID", "journal-test-0001")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200

        deadline = time.monotonic() + 20
        while not journal.matching("/api/v1/auth/me"):
            assert time.monotonic() < deadline, f"no access line in {len(journal.entries)} entries"
            time.sleep(0.1)
        (entry,) = journal.matching("/api/v1/auth/me")[:1]
        assert entry["REQUEST_ID"] == "journal-test-0001"
        assert entry["SYSLOG_IDENTIFIER"] == "laserd"
        assert entry["PRIORITY"] == "6"
        assert entry["LOGGER"].startswith("laserd")
        assert all(key == key.upper() for key in entry)

        assert entry["USER"] == "admin"

        started = journal.matching("listening on")
        assert started and "REQUEST_ID" not in started[0] and "USER" not in started[0]

        # A job's lines carry its id; the shutdown that cancels it says so under JOB_ID.
        wait_machine_idle(d, token)
        file = ready_file(d, token, "long.gcode", long_gcode())
        job = start_job(d, token, file["id"])
        assert d.stop() == 0
        deadline = time.monotonic() + 10
        while not journal.matching(f"job {job['id']} cancelled: shutdown"):
            assert time.monotonic() < deadline, [e.get("MESSAGE") for e in journal.entries]
            time.sleep(0.1)
        (ended,) = journal.matching(f"job {job['id']} cancelled: shutdown")[:1]
        assert ended["JOB_ID"] == str(job["id"])
        assert ended["PRIORITY"] in ("5", "6")
    finally:
        d.close()
        journal.close()
