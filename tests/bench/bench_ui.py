"""UI benchmark: dashboard load → first live status over the WebSocket, and bytes downloaded.

Starts a real laserd (simulated controller) and headless Debian Chromium, signs in once, then:

- ``first_live_ms``: for 5 fresh page loads of ``/#/dashboard`` (refresh cookie already set,
  so each load does GET /setup, POST /auth/refresh, GET /auth/me, opens the WebSocket and
  authenticates), the time from navigation start to the first WebSocket message, read from the
  page's own ``performance.mark("laserd:first-live")``. Median, min and max.
- ``dashboard_bytes``: every response body the browser downloads for a cold-cache dashboard
  load (HTML, CSS, JS modules, icon, API JSON), uncompressed, plus the header bytes.

Run: .venv/bin/python tests/bench/bench_ui.py   (prints one JSON object)
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import urllib.request
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from playwright.sync_api import sync_playwright

from tests.browser.harness import Daemon, launch_chromium

RUNS = 5
ADMIN = ("bench", "bench password 1")


def refresh_cookie(daemon: Daemon) -> list[dict[str, Any]]:
    """Sign in through the API the way the browser does and return the refresh cookie."""
    body = json.dumps({"username": ADMIN[0], "password": ADMIN[1]}).encode()
    req = urllib.request.Request(daemon.base + "/api/v1/auth/login", data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("X-Refresh-Cookie", "1")
    with urllib.request.urlopen(req, timeout=30) as r:
        headers = r.headers.get_all("Set-Cookie") or []
    cookies = []
    for raw in headers:
        jar = SimpleCookie()
        jar.load(raw)
        for name, morsel in jar.items():
            cookies.append(
                {
                    "name": name,
                    "value": morsel.value,
                    "domain": "127.0.0.1",
                    "path": morsel["path"] or "/",
                    "httpOnly": True,
                    "sameSite": "Strict",
                }
            )
    if not cookies:
        raise RuntimeError("login with X-Refresh-Cookie: 1 set no cookie")
    return cookies


def first_live_ms(page: Any) -> float:
    page.wait_for_function(
        "() => performance.getEntriesByName('laserd:first-live').length > 0", timeout=30_000
    )
    return page.evaluate("() => performance.getEntriesByName('laserd:first-live')[0].startTime")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(Path(tmp) / "state").start()
        try:
            daemon.create_admin(*ADMIN)
            with sync_playwright() as p:
                browser = launch_chromium(p)
                # Cold cache: count every byte of one dashboard load.
                ctx = browser.new_context(viewport={"width": 1366, "height": 800})
                ctx.add_cookies(refresh_cookie(daemon))
                page = ctx.new_page()
                sizes: list[dict[str, Any]] = []

                def finished(request: Any) -> None:
                    s = request.sizes()
                    sizes.append({"url": request.url, **s})

                page.on("requestfinished", finished)
                page.goto(daemon.base + "/#/dashboard")
                cold_ms = first_live_ms(page)
                page.wait_for_load_state("networkidle")
                time.sleep(0.5)
                body = sum(s["responseBodySize"] for s in sizes)
                head = sum(s["responseHeadersSize"] for s in sizes)
                static = sum(s["responseBodySize"] for s in sizes if "/api/" not in s["url"])
                files = sorted(
                    (s["url"].replace(daemon.base, ""), s["responseBodySize"]) for s in sizes
                )
                ctx.close()

                # Warm: the same browser profile loading the dashboard again, 5 times.
                ctx = browser.new_context(viewport={"width": 1366, "height": 800})
                ctx.add_cookies(refresh_cookie(daemon))
                times = []
                for _ in range(RUNS):
                    page = ctx.new_page()
                    page.goto(daemon.base + "/#/dashboard")
                    times.append(first_live_ms(page))
                    page.close()
                ctx.close()
                browser.close()
        finally:
            daemon.stop()
    print(
        json.dumps(
            {
                "first_live_ms": {
                    "median": round(statistics.median(times), 1),
                    "min": round(min(times), 1),
                    "max": round(max(times), 1),
                    "runs": [round(t, 1) for t in times],
                    "cold_cache": round(cold_ms, 1),
                },
                "dashboard_bytes": {
                    "bodies": body,
                    "static_files": static,
                    "headers": head,
                    "total": body + head,
                    "requests": len(sizes),
                    "target_under": 150 * 1024,
                    "files": files,
                },
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
