"""Serves the browser UI from ``web/`` (plain files, no build step).

``GET /`` is ``index.html``; every other file is served by its path below ``web/``. Answers
carry ``Cache-Control: no-cache`` with an ETag and Last-Modified, so a browser revalidates
cheaply (304) and never runs a stale script after an upgrade.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web

from laserd.errors import NotFound


def find_web_dir() -> Path | None:
    """The ``web/`` folder of a source checkout, or the copy installed under ``share/laserd``."""
    checkout = Path(__file__).resolve().parent.parent
    candidates = [Path(sys.prefix) / "share" / "laserd" / "web"]
    if (checkout / "pyproject.toml").is_file():  # a source checkout or an editable install
        candidates.insert(0, checkout / "web")
    for c in candidates:
        if (c / "index.html").is_file():
            return c
    return None


class WebUI:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _file(self, rel: str) -> Path:
        if not rel or rel.endswith("/"):
            rel += "index.html"
        if "\x00" in rel or "\\" in rel or any(p in ("..", ".") for p in rel.split("/")):
            raise NotFound()
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise NotFound()
        return path

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = self._file(request.match_info.get("path", ""))
        resp = web.FileResponse(path, headers={"Cache-Control": "no-cache"})
        return resp


def add_routes(app: web.Application, root: Path) -> None:
    ui = WebUI(root)
    app.router.add_get("/", ui.handle)
    app.router.add_get(r"/{path:(?!api/).+}", ui.handle)
