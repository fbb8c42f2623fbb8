"""The layering rule of issue 13 (item 2), read from the source with ``ast``.

* Only the web layer and the wiring import aiohttp: ``laserd/api/``, ``app.py``, ``serve.py``,
  ``keys.py``, ``webui.py``, ``reload.py`` and the cleanup contexts (``*_ctx.py``).
* ``laserd/store/`` never imports ``laserd.api``.
* ``laserd/auth/`` never imports ``laserd.serve``.
* Nothing below the web layer imports ``laserd.api`` either (that would bring aiohttp back in
  through the side door): the same modules as the first rule may.
* ``laserd/grbl/`` (the protocol layer, item 4) knows nothing above it: not the API's models,
  the job runner, machine control, the stores, the library or the safety supervisor. It
  reports typed changes on the bus; ``Machine`` composes the API's ``machine`` snapshot.

Every import counts: at module level, inside a function (the "local import to avoid a cycle"
kind) and under ``TYPE_CHECKING`` (a signature that names ``web.Request`` ties the module to
aiohttp as much as a call does). Where today's code still breaks the rule, the module is listed
in :data:`EXCEPTIONS` with the issue item that removes it. A listed module that no longer breaks
the rule fails the test too, so the list only ever shrinks.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LASERD = Path(__file__).resolve().parents[2] / "laserd"

#: Modules of the web layer and the wiring (paths relative to ``laserd/``). ``netguard.py`` is
#: the HTTP server's connection guard (caps, request-head deadline, aiohttp's protocol
#: errors): web layer by nature, beside serve.py which builds the server with it.
WEB_AND_WIRING = frozenset(
    {"app.py", "serve.py", "keys.py", "webui.py", "reload.py", "netguard.py"}
)


@dataclass(frozen=True)
class Rule:
    name: str
    #: Which modules the rule applies to (path relative to ``laserd/``, as posix).
    applies: Callable[[str], bool]
    #: The imported module names (dotted, absolute) it forbids.
    forbidden: Callable[[str], bool]


def _under(prefix: str) -> Callable[[str], bool]:
    return lambda name: name == prefix or name.startswith(prefix + ".")


def _outside_web_and_wiring(rel: str) -> bool:
    return not (
        rel.startswith("api/")
        or rel in WEB_AND_WIRING
        or rel.rsplit("/", 1)[-1].endswith("_ctx.py")
    )


#: What the protocol layer (``laserd/grbl/``) must not import.
ABOVE_GRBL = ("api", "schemas", "jobs", "job_view", "job_records", "start_checks",
              "machine_control", "machine_ctx", "store", "library",
              "safety", "keys", "app")  # fmt: skip

RULES = (
    Rule(
        "aiohttp only in the web layer and the wiring", _outside_web_and_wiring, _under("aiohttp")
    ),
    Rule("store never imports api", lambda rel: rel.startswith("store/"), _under("laserd.api")),
    Rule("auth never imports serve", lambda rel: rel.startswith("auth/"), _under("laserd.serve")),
    Rule(
        "laserd.api only from the web layer and the wiring",
        _outside_web_and_wiring,
        _under("laserd.api"),
    ),
    Rule(
        "the protocol layer knows nothing above it",
        lambda rel: rel.startswith("grbl/"),
        lambda name: any(_under(f"laserd.{above}")(name) for above in ABOVE_GRBL),
    ),
)

#: (rule name, module) → why it still breaks the rule, and which issue item removes it.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    rel = path.relative_to(LASERD.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(source: str, module: str, is_package: bool = False) -> Iterator[str]:
    """Every module name ``source`` imports (absolute, dotted), wherever the import stands.

    ``from a.b import c`` yields ``a.b`` and ``a.b.c`` (``c`` may be a submodule); relative
    imports are resolved against ``module``.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield base
            for alias in node.names:
                if alias.name != "*":
                    yield f"{base}.{alias.name}"


def violations() -> dict[tuple[str, str], list[str]]:
    """(rule name, module path relative to laserd/) → the forbidden names it imports."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted(LASERD.rglob("*.py")):
        rel = path.relative_to(LASERD).as_posix()
        names = set(
            imported_names(
                path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py"
            )
        )
        for rule in RULES:
            if rule.applies(rel):
                bad = sorted(n for n in names if rule.forbidden(n))
                if bad:
                    found[(rule.name, rel)] = bad
    return found


def test_no_module_breaks_the_layering_rule_outside_the_listed_exceptions() -> None:
    new = {key: names for key, names in violations().items() if key not in EXCEPTIONS}
    assert not new, (
        "these modules break the layering rule (issue 13 item 2); services take plain values "
        "(the caller's address and request id: laserd.origin.current_origin()), and only "
        f"laserd/api/ and the wiring (*_ctx.py) speak HTTP: {new}"
    )


def test_every_listed_exception_still_exists() -> None:
    """An exception whose module no longer breaks the rule is removed from the list."""
    found = violations()
    stale = sorted(key for key in EXCEPTIONS if key not in found)
    assert not stale, f"remove these from EXCEPTIONS, the rule holds for them now: {stale}"


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import aiohttp.web\n", "laserd.x", {"aiohttp.web"}),
        ("from aiohttp import web\n", "laserd.x", {"aiohttp", "aiohttp.web"}),
        (
            "def f():\n    from laserd.serve import public_url\n",
            "laserd.auth.recovery",
            {"laserd.serve", "laserd.serve.public_url"},
        ),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from aiohttp import web\n",
            "laserd.x",
            {"typing", "typing.TYPE_CHECKING", "aiohttp", "aiohttp.web"},
        ),
        ("from .. import api\n", "laserd.store.audit", {"laserd", "laserd.api"}),
        (
            "from ..api.routing import x\n",
            "laserd.store.audit",
            {"laserd.api.routing", "laserd.api.routing.x"},
        ),
        (
            "from . import core\n",
            "laserd.grbl.sim.runner",
            {"laserd.grbl.sim", "laserd.grbl.sim.core"},
        ),
    ],
)
def test_imports_are_found_wherever_they_stand(
    source: str, module: str, expected: set[str]
) -> None:
    assert set(imported_names(source, module)) == expected


def test_the_rules_catch_what_they_forbid() -> None:
    aiohttp_rule, store_rule, auth_rule, api_rule, grbl_rule = RULES
    assert grbl_rule.applies("grbl/link.py") and grbl_rule.applies("grbl/sim/runner.py")
    assert grbl_rule.forbidden("laserd.schemas.machine") and grbl_rule.forbidden("laserd.jobs")
    assert grbl_rule.forbidden("laserd.machine_control") and not grbl_rule.applies("jobs.py")
    assert not grbl_rule.forbidden("laserd.events") and not grbl_rule.forbidden("laserd.errors")
    assert api_rule.applies("auth/cli.py") and api_rule.forbidden("laserd.api.routing")
    assert not api_rule.applies("keys.py") and not api_rule.forbidden("laserd.apikeys")
    assert aiohttp_rule.applies("store/users.py") and aiohttp_rule.applies("jobs.py")
    assert not aiohttp_rule.applies("api/jobs.py") and not aiohttp_rule.applies("machine_ctx.py")
    assert not aiohttp_rule.applies("app.py")
    assert aiohttp_rule.forbidden("aiohttp.web") and not aiohttp_rule.forbidden("aiohttpx")
    assert store_rule.applies("store/audit.py") and store_rule.forbidden("laserd.api.middleware")
    assert not store_rule.forbidden("laserd.apikeys")
    assert auth_rule.applies("auth/recovery.py") and auth_rule.forbidden("laserd.serve")
    assert not auth_rule.forbidden("laserd.server_settings")
