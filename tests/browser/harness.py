"""A real ``laserd serve`` in a subprocess for browser tests and the UI benchmark.

The daemon runs exactly as a user would start it (simulated controller, mock GPIO, debug
endpoints on, fast bcrypt), on a free port with its own state folder. The setup code is read
from its output, like a person reading the console at first start.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SAMPLE_DATA = REPO / "tests" / "data"
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SETUP_CODE_RE = re.compile(r"setup code:\s*(\S+)", re.IGNORECASE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiFailure(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class Daemon:
    """One laserd process. ``start()`` waits for /health; ``stop()`` terminates it."""

    def __init__(
        self,
        state_dir: Path,
        *,
        resume_delay_s: float = 2,
        time_scale: float = 50,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.output: list[str] = []
        self.setup_code: str | None = None
        self._code_seen = threading.Event()
        self.env = {
            **os.environ,
            "LASERD_STORAGE__STATE_DIR": str(state_dir),
            "LASERD_SERVER__HOST": "127.0.0.1",
            "LASERD_SERVER__PORT": str(self.port),
            "LASERD_MACHINE__SIMULATE": "true",
            "LASERD_SIMULATOR__TIME_SCALE": str(time_scale),
            "LASERD_SERVER__DEBUG": "true",
            "LASERD_AUTH__BCRYPT_ROUNDS": "4",
            "LASERD_SAFETY__RESUME_DELAY_S": str(resume_delay_s),
            "LASERD_SAFETY__INTERLOCKS": '[{name="lid", kind="lid", pin=17}]',
        }
        self.env.pop("LASERD_CONFIG", None)
        # Extra daemon environment as JSON, e.g. '{"LASERD_SIMULATOR__TIME_SCALE": "100"}'.
        self.env.update(json.loads(os.environ.get("LASERD_UI_TEST_ENV", "{}")))
        self.env.update(extra_env or {})
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout_s: float = 60) -> Daemon:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "laserd",
                "serve",
                "--config",
                str(self.state_dir / "none.toml"),
            ],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("laserd exited:\n" + "".join(self.output[-40:]))
            try:
                with urllib.request.urlopen(self.base + "/api/v1/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("laserd did not answer /health:\n" + "".join(self.output[-40:]))
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            m = SETUP_CODE_RE.search(line)
            if m and self.setup_code is None:
                self.setup_code = m.group(1).strip().rstrip(".,;")
                self._code_seen.set()

    def wait_setup_code(self, timeout_s: float = 20) -> str:
        if not self._code_seen.wait(timeout_s):
            tail = "".join(self.output[-40:])
            raise RuntimeError(f"no 'setup code:' line in laserd's output:\n{tail}")
        assert self.setup_code is not None
        return self.setup_code

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    # ------------------------------------------------------------------ API helper
    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Any:
        """One call to the API; raises :class:`ApiFailure` on an error status."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + "/api/v1" + path, data=data, method=method)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                payload = r.read()
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            raise ApiFailure(e.code, parsed) from None
        return json.loads(payload) if payload else None

    def create_admin(self, username: str = "admin", password: str = "correct horse 1") -> str:
        """Create the first admin through /setup and return an access token."""
        self.api(
            "POST",
            "/setup",
            {
                "setup_code": self.wait_setup_code(),
                "username": username,
                "email": f"{username}@example.org",
                "password": password,
            },
        )
        return self.login(username, password)

    def login(self, username: str, password: str) -> str:
        return self.api("POST", "/auth/login", {"username": username, "password": password})[
            "access_token"
        ]

    def upload(self, token: str, project_id: Any, name: str, content: bytes, mime: str) -> Any:
        boundary = "----laserdtest" + os.urandom(8).hex()
        body = (
            (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
                f"Content-Type: {mime}\r\n\r\n"
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return self.api(
            "POST",
            f"/projects/{project_id}/files",
            token=token,
            raw=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )

    def wait_machine_idle(self, token: str, timeout_s: float = 60) -> Any:
        """The simulated controller connects a moment after start: wait for it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            m = self.api("GET", "/machine", token=token)
            if m.get("connected") and str(m.get("state")).lower() == "idle":
                return m
            time.sleep(0.2)
        raise TimeoutError("the controller did not become idle")

    def wait_file_ready(self, token: str, file_id: Any, timeout_s: float = 90) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            f = self.api("GET", f"/files/{file_id}", token=token)
            if f["status"] == "ready":
                return f
            if f["status"] == "failed":
                raise RuntimeError(f"processing failed: {f.get('error')}")
            time.sleep(0.3)
        raise TimeoutError(f"file {file_id} not ready")


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
