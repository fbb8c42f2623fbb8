"""Debug-only hook that blocks the event loop on purpose: ``POST /debug/stall``.

It exists so the watchdog can be tested end to end against the real daemon: while the loop
is blocked no ``WATCHDOG=1`` may leave the process, so systemd would restart a daemon whose
loop hangs. Registered only with ``[server] debug = true`` (``debug_only``), never in
production; it is public in debug mode because the daemon tests run before any account exists.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from laserd.api.routing import ApiRoutes
from laserd.auth.principal import Role

log = logging.getLogger(__name__)

routes = ApiRoutes("debug")

#: Delay before the stall begins, so the 202 answer leaves the process first.
STALL_DELAY_S = 0.05


class StallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(gt=0, le=120, description="how long to block the event loop")


class StallAccepted(BaseModel):
    stalling_s: float
    starts_in_s: float


def _block(seconds: float) -> None:
    log.warning("debug: blocking the event loop for %.1f s", seconds)
    time.sleep(seconds)  # deliberately on the loop: this is what the watchdog must catch


@routes.post(
    "/debug/stall",
    role=Role.public,
    body=StallRequest,
    response=StallAccepted,
    status=202,
    debug_only=True,
    summary="Block the event loop for a while (watchdog test hook; debug mode only)",
)
async def stall(request: web.Request, body: StallRequest) -> StallAccepted:
    asyncio.get_running_loop().call_later(STALL_DELAY_S, _block, body.seconds)
    return StallAccepted(stalling_s=body.seconds, starts_in_s=STALL_DELAY_S)
