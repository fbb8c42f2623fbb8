"""Fixtures for the browser tests: a real laserd, headless Debian Chromium, CSP watch."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.harness import ARTIFACTS, CHROMIUM, Daemon, launch_chromium

if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:  # pragma: no cover
    pytest.skip("Debian's chromium is missing (apt-get install chromium)", allow_module_level=True)

ADMIN = ("admin", "correct horse 1")

# A busy 2-core machine runs several test suites at once: wait generously for the screen.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon shared by the tests that do not need a first run, with an admin created."""
    d = Daemon(tmp_path_factory.mktemp("laserd-ui")).start()
    try:
        d.admin_token = d.create_admin(*ADMIN)  # type: ignore[attr-defined]
        # The simulated machine starts with its circuits closed; make sure of it anyway.
        d.api("POST", "/debug/gpio/lid", {"safe": True}, token=d.admin_token)  # type: ignore[attr-defined]
        yield d
    finally:
        d.stop()


@pytest.fixture
def fresh_daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon that has never been set up (first-run tests)."""
    d = Daemon(tmp_path / "state").start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module scope on purpose: Playwright's sync API keeps an event loop running in the
    main thread while it is open, which breaks every asyncio test that runs after it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


class PageWatch:
    """Collects CSP violations and uncaught errors so a test fails on either."""

    def __init__(self, page: Any) -> None:
        self.csp: list[str] = []
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _console(self, msg: Any) -> None:
        if "Content Security Policy" in msg.text or "Refused to" in msg.text:
            self.csp.append(msg.text)

    def check(self) -> None:
        assert not self.csp, f"CSP violations: {self.csp}"
        assert not self.errors, f"uncaught errors in the page: {self.errors}"


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """new_page(viewport=(w, h)) → (page, watch); contexts closed after the test."""
    contexts: list[Any] = []

    def make(viewport: tuple[int, int] = (1366, 800)) -> tuple[Any, PageWatch]:
        ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        ctx.set_default_timeout(20_000)
        contexts.append(ctx)
        page = ctx.new_page()
        return page, PageWatch(page)

    yield make
    for ctx in contexts:
        ctx.close()
