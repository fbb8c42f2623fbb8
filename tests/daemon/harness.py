"""Run the real ``laserd serve`` as a child process, with a NOTIFY_SOCKET standing in for systemd.

Shared by tests/daemon and the benches in tests/bench. Only loopback addresses are used.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command() -> list[str]:
    """``python -m laserd serve`` from this checkout, or ``$LASERD_DAEMON_CMD`` (for example
    ``/opt/laserd/venv/bin/laserd serve``, to run these tests against an installed build)."""
    custom = os.environ.get("LASERD_DAEMON_CMD")
    if custom:
        return shlex.split(custom)
    return [sys.executable, "-m", "laserd", "serve"]


@dataclass
class Message:
    at: float  # time.monotonic() when received
    fields: dict[str, str]
    raw: str


class NotifyListener:
    """The systemd side of sd_notify: a datagram socket and a thread that records messages.

    ``on_message`` runs in the listener thread right when a datagram arrives, so a test can
    probe the daemon at the very moment it claims to be ready.
    """

    def __init__(self, path: Path, on_message: Callable[[Message], None] | None = None) -> None:
        self.path = path
        self.messages: list[Message] = []
        self.on_message = on_message
        self._cond = threading.Condition()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.2)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="notify-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            raw = data.decode(errors="replace")
            fields = dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)
            msg = Message(time.monotonic(), fields, raw)
            if self.on_message is not None:
                self.on_message(msg)
            with self._cond:
                self.messages.append(msg)
                self._cond.notify_all()

    def wait_for(self, key: str, value: str | None = None, timeout_s: float = 60.0) -> Message:
        """The first message (already received or coming) that has ``key`` (= ``value``)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for msg in self.messages:
                    if key in msg.fields and (value is None or msg.fields[key] == value):
                        return msg
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {key} message in {timeout_s} s: {self.raw()}")
                self._cond.wait(left)

    def with_key(self, key: str) -> list[Message]:
        with self._cond:
            return [m for m in self.messages if key in m.fields]

    def raw(self) -> list[str]:
        with self._cond:
            return [m.raw for m in self.messages]

    def close(self) -> None:
        self._stop = True
        self._sock.close()
        self._thread.join(timeout=5)


@dataclass
class Daemon:
    """One ``laserd serve`` child with its own state folder, port and notify socket."""

    workdir: Path
    port: int = field(default_factory=free_port)
    watchdog_usec: int | None = None
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    on_message: Callable[[Message], None] | None = None
    preexec: Callable[[], None] | None = None
    command: list[str] = field(default_factory=lambda: serve_command())
    proc: subprocess.Popen[bytes] | None = None
    listener: NotifyListener | None = None
    started_at: float = 0.0

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "laserd.db"

    @property
    def log_path(self) -> Path:
        return self.workdir / "laserd.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        sections: dict[str, dict[str, Any]] = {
            "server": {"host": "127.0.0.1", "port": self.port, "debug": True, "log_level": "info"},
            "storage": {"state_dir": str(self.state_dir)},
            # The simulated GRBL on a pty and gpiozero mock pins: the real serial and GPIO code.
            "machine": {"simulate": True},
            "simulator": {"time_scale": 1.0},
            "auth": {"bcrypt_rounds": 4},
        }
        for name, values in self.config.items():
            sections.setdefault(name, {}).update(values)
        lines = []
        for name, values in sections.items():
            lines.append(f"[{name}]")
            lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
        path = self.workdir / "laserd.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LASERD_", "NOTIFY_", "WATCHDOG_", "JOURNAL_", "INVOCATION_"))
        }
        env["LASERD_CONFIG"] = str(self.workdir / "laserd.toml")
        env["NOTIFY_SOCKET"] = str(self.workdir / "notify.sock")
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        if self.watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(self.watchdog_usec)
        env.update(self.extra_env)
        return env

    def start(self) -> Daemon:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        if self.listener is None:
            sock = self.workdir / "notify.sock"
            sock.unlink(missing_ok=True)
            self.listener = NotifyListener(sock, self.on_message)
        else:
            self.listener.messages.clear()
        log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.command,
            cwd=self.workdir,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=self.preexec,
        )
        log.close()
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> Message:
        assert self.listener is not None
        try:
            return self.listener.wait_for("READY", "1", timeout_s)
        except TimeoutError:
            detail = f"exit={self.poll()}; log:\n{self.log_tail()}"
            raise AssertionError(f"not ready; {detail}") from None

    def poll(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def close(self) -> None:
        self.kill()
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    # ---- HTTP on loopback

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        timeout_s: float = 10.0,
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            status = exc.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw

    def health(self, timeout_s: float = 2.0) -> tuple[int, Any]:
        return self.request("GET", "/api/v1/health", timeout_s=timeout_s)

    def db_query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()


# ---------------------------------------------------------------------------- jobs through the API

ADMIN = {"username": "admin", "email": "admin@example.com", "password": "correct horse 42"}


def create_admin(d: Daemon) -> None:
    """``laserd create-admin`` against the daemon's configuration (the operator's way)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "laserd",
            "create-admin",
            "--username",
            ADMIN["username"],
            "--email",
            ADMIN["email"],
            "--password-stdin",
        ],
        input=ADMIN["password"] + "\n",
        capture_output=True,
        text=True,
        env=d.env(),
        cwd=d.workdir,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def login(d: Daemon) -> str:
    status, body = d.request(
        "POST",
        "/api/v1/auth/login",
        {"username": ADMIN["username"], "password": ADMIN["password"]},
    )
    assert status == 200, body
    return body["access_token"]


def upload(d: Daemon, token: str, name: str, content: bytes, timeout_s: float = 120) -> dict:
    """A project, one uploaded file, processed to ``ready``; returns the file."""
    status, project = d.request("POST", "/api/v1/projects", {"name": "daemon test"}, token)
    assert status == 201, project
    boundary = "laserd-daemon-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    req = urllib.request.Request(
        f"{d.base_url}/api/v1/projects/{project['id']}/files", data=body, method="POST"
    )
    req.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=60) as resp:
        file = json.loads(resp.read())
    deadline = time.monotonic() + timeout_s
    while file["status"] in ("pending", "processing"):
        assert time.monotonic() < deadline, f"file not processed: {file}"
        time.sleep(0.2)
        status, file = d.request("GET", f"/api/v1/files/{file['id']}", token=token)
        assert status == 200, file
    assert file["status"] == "ready", file
    return file


def ready_file(d: Daemon, token: str, name: str, content: bytes) -> dict:
    """Uploaded through the API and processed to ``ready`` (see :func:`upload`)."""
    return upload(d, token, name, content)


def long_gcode(moves: int = 400, step_mm: float = 10.0, feed_mm_min: int = 1200) -> bytes:
    """A raster-like job that runs for minutes at time_scale 1: the laser on, back and forth."""
    lines = ["G21", "G90", "M4 S0", f"G1 F{feed_mm_min}"]
    for i in range(moves):
        x = step_mm if i % 2 == 0 else 0.0
        lines.append(f"G1 X{x:.1f} Y{(i // 2) * 0.2:.1f} S{300 + (i % 5) * 100}")
    lines += ["M5", "G0 X0 Y0"]
    return ("\n".join(lines) + "\n").encode()


def start_job(d: Daemon, token: str, file_id: int, timeout_s: float = 60) -> dict:
    """Submit and wait until the job is ``running`` with some lines acknowledged."""
    status, job = d.request("POST", "/api/v1/jobs", {"file_id": file_id}, token)
    assert status == 201, job
    deadline = time.monotonic() + timeout_s
    while not (job["state"] == "running" and job["lines_acked"] > 5):
        assert job["state"] in ("queued", "waiting_start", "running"), job
        assert time.monotonic() < deadline, f"job did not get going: {job}"
        time.sleep(0.1)
        status, job = d.request("GET", f"/api/v1/jobs/{job['id']}", token=token)
    return job


def wait_machine_idle(d: Daemon, token: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        status, machine = d.request("GET", "/api/v1/machine", token=token)
        if status == 200 and machine.get("connected") and machine.get("state") in ("idle", "Idle"):
            return machine
        assert time.monotonic() < deadline, f"machine not idle: {status} {machine}"
        time.sleep(0.2)
