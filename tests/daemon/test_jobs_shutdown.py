"""Stopping and crashing the real daemon in the middle of a job (simulated GRBL, real pty).

SIGTERM mid-job: the job is stopped safely and recorded ``cancelled`` with reason
``shutdown``, and the process exits 0 within seconds. ``kill -9`` mid-job: the next start
marks the job ``interrupted``, the database passes ``PRAGMA integrity_check``, the upload is
intact, and nothing resumes by itself.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest

from tests.daemon.harness import (
    Daemon,
    Message,
    create_admin,
    login,
    long_gcode,
    ready_file,
    start_job,
    wait_machine_idle,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def daemon(tmp_path: Path):
    d = Daemon(tmp_path / "d")
    d.workdir.mkdir(parents=True)
    d.write_config()
    create_admin(d)
    yield d
    d.close()


def _running_job(d: Daemon) -> tuple[str, dict, dict, bytes]:
    d.start()
    d.wait_ready()
    token = login(d)
    wait_machine_idle(d, token)
    content = long_gcode()
    file = ready_file(d, token, "long.gcode", content)
    job = start_job(d, token, file["id"])
    return token, file, job, content


def test_sigterm_mid_job_cancels_it_with_reason_shutdown_and_exits_zero(daemon):
    d = daemon
    _, _, job, _ = _running_job(d)
    # systemctl status follows the job: its id, state and percentage.
    pattern = re.compile(rf"^job {job['id']} running \d+%; controller connected")
    deadline = time.monotonic() + 20
    while not any(pattern.match(m.fields["STATUS"]) for m in d.listener.with_key("STATUS")):
        assert time.monotonic() < deadline, d.listener.raw()
        time.sleep(0.1)
    t0 = time.monotonic()
    d.signal(15)
    assert d.proc.wait(timeout=30) == 0, d.log_tail()
    assert time.monotonic() - t0 < 20
    state, error, acked, total = d.db_query(
        "SELECT state, error, lines_acked, lines_total FROM jobs WHERE id = ?", job["id"]
    )[0]
    assert (state, error) == ("cancelled", "shutdown")
    assert 0 < acked < total
    assert d.db_query("PRAGMA integrity_check") == [("ok",)]
    log = d.log_tail(200)
    assert log.index(f"job {job['id']} cancelled: shutdown") < log.index("stopped")
    stopping = d.listener.with_key("STOPPING")
    assert stopping and "SIGTERM" in stopping[0].fields.get("STATUS", "")


def test_kill_9_mid_job_then_restart_marks_it_interrupted_and_resumes_nothing(daemon):
    d = daemon
    token, file, job, content = _running_job(d)
    status, enable = d.request("GET", "/api/v1/debug/laser-enable", token=token)
    assert status == 200 and enable["armed"]
    d.kill()  # SIGKILL: no clean-up at all, as on a crash or a power cut

    at_ready: dict = {}

    def probe(msg: Message) -> None:
        # The moment the new process says READY=1: the crashed job is already settled and
        # the laser-enable output is off (the login of the crashed run is still valid).
        if msg.fields.get("READY") == "1" and not at_ready:
            at_ready["enable"] = d.request("GET", "/api/v1/debug/laser-enable", token=token)
            at_ready["job"] = d.db_query("SELECT state FROM jobs WHERE id = ?", job["id"])

    d.listener.on_message = probe
    d.start()
    d.wait_ready()
    status, enable = at_ready["enable"]
    assert status == 200 and not enable["armed"] and not enable["output_on"]
    assert at_ready["job"] == [("interrupted",)]
    token = login(d)
    state, error = d.db_query("SELECT state, error FROM jobs WHERE id = ?", job["id"])[0]
    assert state == "interrupted" and error
    assert d.db_query("PRAGMA integrity_check") == [("ok",)]

    (recorded,) = d.db_query("SELECT sha256 FROM files WHERE id = ?", file["id"])[0]
    assert recorded == hashlib.sha256(content).hexdigest()
    stored = [
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (d.state_dir / "uploads").rglob("*")
        if p.is_file()
    ]
    assert recorded in stored

    machine = wait_machine_idle(d, token)
    assert machine.get("job") is None
    time.sleep(2.0)  # nothing may start moving by itself
    status, machine = d.request("GET", "/api/v1/machine", token=token)
    assert status == 200
    assert machine["state"].lower() == "idle" and machine.get("job") is None
    status, listed = d.request("GET", "/api/v1/jobs", token=token)
    assert status == 200
    assert [j["state"] for j in listed["items"]] == ["interrupted"]
    assert f"job {job['id']} was active when laserd stopped" in d.log_tail(200)
    assert d.stop() == 0
