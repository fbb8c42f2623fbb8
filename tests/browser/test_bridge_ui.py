"""The dashboard's Bridge card (issue 17): a GRBL client connects over TCP, waits, is
accepted from the card, is seen running, and is ended from the card like a job."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.harness import Daemon, free_port
from tests.browser.test_ui import sign_in


def test_bridge_card_accepts_shows_and_ends_a_session(
    tmp_path: Path, new_page: Any, artifacts: Path
) -> None:
    port = free_port()
    d = Daemon(
        tmp_path / "state",
        extra_env={
            "LASERD_BRIDGE__ENABLED": "true",
            "LASERD_BRIDGE__PORT": str(port),
            "LASERD_BRIDGE__ALLOW": '["127.0.0.0/8"]',
        },
    ).start()
    sock = None
    try:
        d.create_admin("maker", "bridge test 1")
        page, watch = new_page()
        sign_in(page, d, "maker", "bridge test 1")
        card = page.locator(".bridge-panel")
        expect(card).to_contain_text(f"port {port}")
        expect(card).to_contain_text("No connection waiting.")
        # A session needs the controller: right after start the link may still be shaking
        # hands (an Accept then answers 503, as it should).
        expect(page.locator("#machine-state")).to_have_text("Ready", timeout=30_000)

        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        expect(card.locator(".bridge-pending")).to_contain_text("127.0.0.1:")
        card.get_by_role("button", name="Accept").click()
        expect(card.locator(".bridge-session")).to_contain_text("accepted by maker")
        sock.sendall(b"G90\nG21\n")
        expect(card.locator(".bridge-lines")).to_have_text("2", timeout=30_000)
        page.screenshot(path=str(artifacts / "bridge-card.png"))

        card.get_by_role("button", name="End session").click()
        expect(card).to_contain_text("No session running.")
        sock.settimeout(10)
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        assert b"Grbl 1.1" in received and b"session ended" in received
        assert received.count(b"ok\r\n") == 2
        watch.check()
    finally:
        if sock is not None:
            sock.close()
        d.stop()
