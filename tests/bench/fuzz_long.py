"""Schemathesis against a live ``laserd serve``: every operation of its own OpenAPI document,
as anonymous, guest, user and admin, plus a last run of the operations that would end the
fuzzing session (logout, password change, user deletion, disconnect) with throwaway accounts.

The long run (prints one JSON object: cases, failures by kind, per run)::

    cd /work/main && .venv/bin/python tests/bench/fuzz_long.py --max-examples 100

Options: ``--max-examples N`` (cases per operation and phase, default 100), ``--seed N`` (default:
a fresh random seed each run, printed in the summary so that a failure can be replayed),
``--workers N`` (default 2), ``--keep DIR`` (keep the state folder, daemon log and schemathesis
reports there). It takes about six minutes on two cores. The bounded run inside the test
suite (``tests/api/test_fuzz.py``) uses :func:`prepare` and :func:`run` with three examples
per operation and no stateful phase (about 70 s).

Why the runs are split the way they are:

- The daemon runs in production mode (``debug = false``): debug routes must not be reachable,
  so they are not in the document and are not fuzzed.
- Each role runs the whole document with its own bearer token, so every gate, every model and
  every handler sees hostile input from every kind of caller. Anonymous goes first, admin last
  among the role runs (the admin's ``PATCH /users/{id}`` could otherwise disable the guest).
- Operations whose success ends the caller's session or the machine link (see
  :data:`SESSION_ENDING`) are left out of the role runs and fuzzed in the final run, each with
  an account of its own made for it, so they are tested too without spoiling the others.
- ``GET /ws`` is a WebSocket, not a request/response operation; its refusals are checked in
  tests/api/test_security.py and tests/api/test_role_matrix.py.

Checks: all of schemathesis's checks. ``positive_data_acceptance`` also accepts 422 (415) on
the few operations where a schema-valid value is refused for a reason JSON Schema cannot state
(see :data:`SEMANTIC_REFUSALS`): a token that does not exist, a password's length in bytes or
the configured minimum length, cross-field laser rules, an upload's content.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.daemon.harness import ADMIN, Daemon, create_admin, login  # noqa: E402

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
API = "/api/v1"

#: Operations whose success would end the fuzzing caller's session or the machine link.
#: Each gets its own throwaway account of the least role that may call it.
SESSION_ENDING: dict[str, str] = {
    f"POST {API}/auth/logout": "guest",
    f"POST {API}/auth/logout-all": "guest",
    f"POST {API}/auth/change-password": "guest",
    f"PATCH {API}/users/{{id}}": "admin",
    f"DELETE {API}/users/{{id}}": "admin",
    f"POST {API}/machine/disconnect": "user",
}

#: Not a request/response operation (the WebSocket upgrade).
NOT_HTTP = (f"GET {API}/ws",)

#: Schema-valid values refused for reasons JSON Schema cannot express, and the status used.
SEMANTIC_REFUSALS: dict[str, tuple[str, ...]] = {
    f"POST {API}/setup": ("422",),  # password min length (a setting), bytes not characters
    f"POST {API}/auth/register": ("422",),  # same
    f"POST {API}/auth/refresh": ("422",),  # no token in the body and no cookie header
    f"POST {API}/auth/change-password": ("422",),  # password rules
    f"PATCH {API}/auth/me": ("422",),  # a new email needs the right current password
    f"POST {API}/auth/password-reset/confirm": ("422",),  # unknown or spent token
    f"POST {API}/auth/verify-email/confirm": ("422",),  # unknown or spent token
    f"POST {API}/users": ("422",),  # password rules
    f"PATCH {API}/users/{{id}}": ("422",),  # password rules
    f"POST {API}/auth/api-keys": ("422",),  # a role above the caller's own
    f"POST {API}/projects": ("422",),  # laser settings' cross-field rules
    f"PATCH {API}/projects/{{id}}": ("422",),  # same, on the merged settings
    f"POST {API}/materials": ("422",),  # at least one operation; image power min <= max
    f"PATCH {API}/materials/{{id}}": ("422",),  # same, on the merged settings
    # The content decides: empty, not a LightBurn library, or hostile XML (422).
    f"POST {API}/materials/import": ("422",),
    # ranges' min <= max (one step: min == max) and the placed grid on the bed
    f"POST {API}/projects/{{id}}/test-grid": ("422",),
    # A placement off the bed, unknown layer ids, layers of a non-design, placement of G-code.
    f"PATCH {API}/files/{{id}}": ("422",),
    f"POST {API}/machine/console": ("422",),  # GRBL's line rules (real-time characters)
    # The content decides: empty (422) or neither G-code nor a supported image (415).
    f"POST {API}/projects/{{id}}/files": ("415", "422"),
}
POSITIVE_OK = ["2xx", "3xx", "401", "403", "404", "409", "423", "429", "503", "507"]

ROLE_RUNS = ("anonymous", "guest", "user", "admin")


@dataclass
class RunResult:
    name: str
    cases: int = 0
    failures: int = 0
    errors: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    exit_code: int = 0


def _api(d: Daemon, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    status, data = d.request(method, API + path, body, token, timeout_s=60)
    if status >= 300:
        raise RuntimeError(f"{method} {path}: {status} {data}")
    return data


def account_password(name: str) -> str:
    return f"fuzz-{name}-passphrase"


def make_account(d: Daemon, admin_token: str, name: str, role: str) -> str:
    """An active account made through the API by the admin; returns its access token."""
    password = account_password(name)
    row = _api(
        d,
        "POST",
        "/users",
        {"username": name, "email": f"{name}@example.test", "password": password, "role": role},
        admin_token,
    )
    if row["status"] != "active":
        _api(d, "PATCH", f"/users/{row['id']}", {"status": "active"}, admin_token)
    return _api(d, "POST", "/auth/login", {"username": name, "password": password})["access_token"]


def _toml_str(value: str) -> str:
    return json.dumps(value)


def write_config(path: Path, *, bearer: str | None, per_operation: dict[str, str]) -> None:
    """schemathesis.toml: the caller's token, per-operation tokens and the 422 allowances."""
    lines = [
        "[checks.positive_data_acceptance]",
        f"expected-statuses = {json.dumps(POSITIVE_OK)}",
        "",
    ]
    if bearer:
        lines += ["[auth.openapi.bearer]", f"bearer = {_toml_str(bearer)}", ""]
    for name, extra in SEMANTIC_REFUSALS.items():
        lines += [
            "[[operations]]",
            f"include-name = {_toml_str(name)}",
            "checks.positive_data_acceptance.expected-statuses = "
            + json.dumps([*POSITIVE_OK, *extra]),
            "",
        ]
    for name, token in per_operation.items():
        lines += [
            "[[operations]]",
            f"include-name = {_toml_str(name)}",
            f"headers = {{ Authorization = {_toml_str('Bearer ' + token)} }}",
            "",
        ]
    path.write_text("\n".join(lines))


def _summarise_ndjson(path: Path, result: RunResult, limit: int = 20) -> None:
    """Failures by kind (check name and failure title) with a few concrete samples."""
    kinds: collections.Counter[str] = collections.Counter()
    sampled: set[tuple[str, str | None]] = set()  # one sample per kind and operation
    for line in path.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished.get("recorder") or {}
        for case_id, checks in (recorder.get("checks") or {}).items():
            for check in checks:
                if check.get("status") != "failure":
                    continue
                failure = check.get("failure_info", {}).get("failure", {})
                kind = f"{check['name']}: {failure.get('title', '?')}"
                kinds[kind] += 1
                key = (kind, failure.get("operation"))
                if key not in sampled and len(result.samples) < limit:
                    sampled.add(key)
                    case = recorder.get("cases", {}).get(case_id, {}).get("value", {})
                    inter = (recorder.get("interactions") or {}).get(case_id) or {}
                    resp = inter.get("response") or {}
                    result.samples.append(
                        {
                            "kind": kind,
                            "operation": failure.get("operation"),
                            "message": (failure.get("message") or "")[:400],
                            "request": {
                                k: case.get(k)
                                for k in ("method", "path", "path_parameters", "query", "body")
                                if case.get(k) is not None
                            },
                            "status": resp.get("status_code"),
                        }
                    )
    result.by_kind = dict(kinds)


def run_schemathesis(
    d: Daemon,
    name: str,
    workdir: Path,
    *,
    bearer: str | None,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    per_operation: dict[str, str] | None = None,
    max_examples: int,
    seed: int | None,
    workers: int,
    timeout_s: float,
    phases: str = "examples,coverage,fuzzing,stateful",
    deterministic: bool = False,
) -> RunResult:
    """One schemathesis run. ``deterministic``: the same cases on every run (hypothesis
    derandomized, on top of ``seed``): what the test suite needs, so CI cannot fail at random;
    the long run keeps random seeds to keep finding new cases."""
    rundir = workdir / f"run-{name}"
    rundir.mkdir(parents=True, exist_ok=True)
    write_config(rundir / "schemathesis.toml", bearer=bearer, per_operation=per_operation or {})
    cmd = [
        str(SCHEMATHESIS),
        "--config-file",
        str(rundir / "schemathesis.toml"),
        "run",
        f"{d.base_url}{API}/openapi.json",
        "--checks",
        "all",
        "--phases",
        phases,
        "--max-examples",
        str(max_examples),
        "--workers",
        str(workers),
        "--no-shrink",
        "--continue-on-failure",
        # Text that UTF-8 can carry: lone surrogates are no Unicode (laserd answers 400 for
        # them, tested in test_security.py), and would count as "schema-valid" data refused.
        "--generation-codec",
        "utf-8",
        "--request-timeout",
        "30",
        "--report",
        "json,ndjson",
        "--report-json-path",
        str(rundir / "report.json"),
        "--report-ndjson-path",
        str(rundir / "events.ndjson"),
        "--no-color",
    ]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    # No example database either way (nothing carries over between runs); deterministic mode
    # implies it and refuses the option.
    cmd += ["--generation-deterministic"] if deterministic else ["--generation-database", "none"]
    for op in include:
        cmd += ["--include-name", op]
    for op in exclude:
        cmd += ["--exclude-name", op]
    started = time.monotonic()
    proc = subprocess.run(
        cmd,
        cwd=rundir,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "NO_COLOR": "1"},
    )
    (rundir / "output.txt").write_text(proc.stdout + proc.stderr)
    result = RunResult(
        name, seconds=round(time.monotonic() - started, 1), exit_code=proc.returncode
    )
    report_path = rundir / "report.json"
    if not report_path.exists():
        raise RuntimeError(
            f"schemathesis wrote no report ({proc.returncode}):\n{proc.stdout[-3000:]}"
            f"\n{proc.stderr[-3000:]}"
        )
    report = json.loads(report_path.read_text())
    cases = report["test_cases"]
    result.cases = cases["generated"]
    result.failures = cases["with_failures"]
    result.errors = cases["errored"] + len(report.get("errors") or [])
    _summarise_ndjson(rundir / "events.ndjson", result)
    if report.get("errors"):
        result.samples.extend({"kind": "error", **e} for e in report["errors"][:5])
    return result


def wait_serving(d: Daemon, timeout_s: float) -> None:
    """Until ``/health`` answers (polled: sd_notify READY is not what this run is about)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if d.poll() is not None:
            raise RuntimeError(f"laserd exited with {d.poll()}:\n{d.log_tail()}")
        try:
            status, _ = d.health(timeout_s=5)
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"laserd not serving after {timeout_s} s:\n{d.log_tail()}")
        time.sleep(0.2)


def start_daemon(workdir: Path) -> tuple[Daemon, str]:
    """The real daemon in production mode on the simulator; returns it and an admin token."""
    d = Daemon(
        workdir,
        config={
            "server": {"debug": False, "access_log": False},
            "simulator": {"time_scale": 50.0},
            "auth": {"bcrypt_rounds": 4},
        },
    )
    d.start()
    wait_serving(d, 120)
    create_admin(d)
    return d, login(d)


@dataclass
class Target:
    """The daemon under test and the credentials of every run."""

    daemon: Daemon
    workdir: Path
    tokens: dict[str, str | None]
    throwaway: dict[str, str]

    def close(self) -> None:
        self.daemon.close()

    def credentials_in_log(self) -> list[str]:
        """Which of the runs' passwords and tokens the daemon's log holds (none, it should)."""
        secrets = {"admin password": ADMIN["password"]}
        secrets.update({f"{n} token": t for n, t in self.tokens.items() if t})
        secrets.update({f"{op} token": t for op, t in self.throwaway.items()})
        for name in ("fuzzguest", "fuzzuser"):
            secrets[f"{name} password"] = account_password(name)
        text = self.daemon.log_path.read_text(errors="replace")
        return sorted(label for label, value in secrets.items() if value in text)


def prepare(workdir: Path) -> Target:
    """Start the daemon and make the accounts: one per role, one per session-ending operation."""
    d, admin_token = start_daemon(workdir / "daemon")
    try:
        tokens: dict[str, str | None] = {
            "anonymous": None,
            "guest": make_account(d, admin_token, "fuzzguest", "guest"),
            "user": make_account(d, admin_token, "fuzzuser", "user"),
            "admin": admin_token,
        }
        throwaway = {
            op: make_account(d, admin_token, f"tw{i}{role}", role)
            for i, (op, role) in enumerate(SESSION_ENDING.items())
        }
    except BaseException:
        d.close()
        raise
    return Target(d, workdir, tokens, throwaway)


def run(target: Target, name: str, **common: Any) -> RunResult:
    """One named run: a role (``anonymous`` ... ``admin``) or ``session_ending``."""
    if name == "session_ending":
        return run_schemathesis(
            target.daemon,
            name,
            target.workdir,
            bearer=None,
            include=tuple(SESSION_ENDING),
            per_operation=target.throwaway,
            **common,
        )
    return run_schemathesis(
        target.daemon,
        name,
        target.workdir,
        bearer=target.tokens[name],
        exclude=tuple(SESSION_ENDING) + NOT_HTTP,
        **common,
    )


#: Run order: anonymous first, admin after the other roles, the session-ending run last.
RUNS = (*ROLE_RUNS, "session_ending")


def fuzz(
    workdir: Path,
    *,
    max_examples: int = 100,
    seed: int | None = None,
    workers: int = 2,
    timeout_s: float = 3600,
) -> dict[str, Any]:
    """Every run in order against one daemon; returns the JSON-able summary."""
    target = prepare(workdir)
    common = {
        "max_examples": max_examples,
        "seed": seed,
        "workers": workers,
        "timeout_s": timeout_s,
    }
    try:
        results = [run(target, name, **common) for name in RUNS]
        alive = target.daemon.poll() is None
        status, health = target.daemon.health(timeout_s=10)
        leaked = target.credentials_in_log()
    finally:
        target.close()
    by_kind: collections.Counter[str] = collections.Counter()
    for r in results:
        by_kind.update(r.by_kind)
    return {
        "command": "tests/bench/fuzz_long.py",
        "max_examples": max_examples,
        "seed": seed,
        "cases": sum(r.cases for r in results),
        "failures": sum(r.failures for r in results),
        "tool_errors": sum(r.errors for r in results),
        "failures_by_kind": dict(by_kind),
        "daemon_alive_after": alive and status == 200,
        "credentials_in_daemon_log": leaked,
        "health_after": health,
        "runs": [
            {
                "name": r.name,
                "cases": r.cases,
                "failures": r.failures,
                "tool_errors": r.errors,
                "failures_by_kind": r.by_kind,
                "seconds": r.seconds,
                "samples": r.samples,
            }
            for r in results
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="keep state and reports here")
    args = parser.parse_args()
    if args.seed is None:  # random, but known: the summary names it
        args.seed = random.randrange(2**32)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        summary = fuzz(
            args.keep, max_examples=args.max_examples, seed=args.seed, workers=args.workers
        )
    else:
        with tempfile.TemporaryDirectory(prefix="laserd-fuzz-") as tmp:
            summary = fuzz(
                Path(tmp), max_examples=args.max_examples, seed=args.seed, workers=args.workers
            )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
