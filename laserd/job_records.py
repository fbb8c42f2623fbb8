"""A job's row in the database while it runs: its progress saved now and then, and its final
row written even while another process holds SQLite's write lock.

Both run after the safety work is done (the laser is off before the final row is written), so a
slow or locked database delays the record, never the reflex.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiosqlite

from laserd.job_view import ActiveJob
from laserd.store import jobs as store

log = logging.getLogger(__name__)

#: At shutdown, how long the final row of a job may be retried on an unwritable database.
END_RECORD_SHUTDOWN_S = 5.0


async def record_end(
    conn: aiosqlite.Connection,
    job_id: int,
    fields: dict[str, Any],
    *,
    closing: Callable[[], bool],
) -> None:
    """Write the job's final row, retrying while the database is unwritable.

    Another process can hold SQLite's write lock past the busy timeout (a backup, a
    ``sqlite3`` shell). One failed write used to leave the row ``running`` although the job
    had ended, and the next start then called it ``interrupted``. The laser is already off
    here; the job stays the active one (in its final state, so the API shows the truth)
    until the row is written, which also keeps a new job from starting on a database that
    cannot record it. At shutdown (``closing()``) it gives up after a few tries and says so.
    """
    delay_s = 0.5
    started = time.monotonic()
    while True:
        try:
            await store.update(conn, job_id, **fields)
            waited_s = time.monotonic() - started
            if waited_s > 1.0:
                log.info("end of job %d recorded after %.1f s", job_id, waited_s)
            return
        except Exception as exc:
            if closing() and time.monotonic() - started > END_RECORD_SHUTDOWN_S:
                log.error("could not record the end of job %d: %s", job_id, exc)
                return
            log.warning("could not record the end of job %d yet (%s); retrying", job_id, exc)
        await asyncio.sleep(delay_s)
        delay_s = min(delay_s * 2, 5.0)


async def save_progress(conn: aiosqlite.Connection, a: ActiveJob) -> None:
    """Save the running job's figures; a failure is logged, the job goes on."""
    try:
        await store.update(
            conn,
            a.id,
            state=a.state,
            lines_sent=a.lines_sent,
            lines_acked=a.lines_acked,
            started_at=a.started_at,
            pause_reason=a.pause_reason,
        )
    except Exception:
        log.exception("could not save the progress of job %d", a.id)
