"""Bounded schemathesis run against a live ``laserd serve`` (production mode, simulated GRBL).

One daemon for the module; one test per run, in the order of ``fuzz_long.RUNS`` (anonymous,
guest, user, admin, then the session-ending operations with throwaway accounts). Each run
asserts: no failed check (no 500, answers match the documented schemas, statuses and the error
envelope; schema-valid input accepted, schema-invalid input refused) and the daemon still
serving. The longer run is ``tests/bench/fuzz_long.py`` (its docstring has the command).

Examples per operation are kept small so the module stays around a minute and a half on two
busy cores; the coverage phase still walks every operation's boundary values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bench.fuzz_long import RUNS, RunResult, Target, prepare, run

MAX_EXAMPLES = 3
#: A fixed seed and derandomized generation: the suite fuzzes the same cases on every run, so
#: CI fails only when the code changed (a random seed once made CI fail at random). The long
#: run, tests/bench/fuzz_long.py, keeps drawing fresh seeds.
SEED = 20261205
RUN_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    workdir: Path = tmp_path_factory.mktemp("fuzz")
    t = prepare(workdir)
    try:
        yield t
    finally:
        t.close()


def _explain(result: RunResult) -> str:
    return json.dumps(
        {"by_kind": result.by_kind, "samples": result.samples, "errors": result.errors},
        indent=1,
    )[:6000]


@pytest.mark.parametrize("name", RUNS)
def test_fuzz_run_has_no_failures(target: Target, name: str) -> None:
    result = run(
        target,
        name,
        max_examples=MAX_EXAMPLES,
        seed=SEED,
        workers=2,
        timeout_s=RUN_TIMEOUT_S,
        phases="examples,coverage,fuzzing",
        deterministic=True,
    )
    # The counts, for the record (shown with ``pytest -s`` or ``-rA``).
    print(json.dumps({"run": name, "cases": result.cases, "failures": result.failures}))
    assert result.cases > 0, f"{name}: schemathesis generated nothing"
    assert result.failures == 0, f"{name}: {result.failures} failing cases\n{_explain(result)}"
    status, _ = target.daemon.health(timeout_s=30)
    assert status == 200 and target.daemon.poll() is None, "the daemon stopped serving"


def test_the_daemon_log_holds_no_credentials(target: Target) -> None:
    """After every run above: no password or token of the fuzzing accounts in laserd's log."""
    assert target.daemon.log_path.read_text(errors="replace"), "the daemon logged nothing"
    assert target.credentials_in_log() == []
