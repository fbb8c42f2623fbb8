"""A job as the API shows it: the active job's live figures, its API shape and its ETA.

:class:`ActiveJob` is what the job runner updates as the controller acknowledges lines;
:func:`job_view` turns a stored row (completed with those live figures while the job runs)
into the shape API.md documents, and :func:`_eta` estimates the seconds left from the file's
planner model corrected by the observed pace. Nothing here talks to the controller.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from laserd.grbl.controller import Alarm
from laserd.machine_use import Claim
from laserd.planner_settings import elapsed_at

TERMINAL = frozenset({"completed", "failed", "cancelled", "interrupted"})
#: Job states in which overrides may be changed (by the job's owner or an admin).
STEERABLE = frozenset({"running", "paused"})


@dataclass
class ActiveJob:
    row: dict[str, Any]
    path: str
    estimated_s: float | None
    air_assist: bool
    #: ``[[lines_acked, model seconds], ...]`` from the file's analysis (planner model).
    checkpoints: list[list[float]] | None = None
    state: str = "queued"
    lines_sent: int = 0
    lines_acked: int = 0
    started_mono: float | None = None
    started_at: str | None = None
    pause_reason: str | None = None
    error: str | None = None
    #: Set when the job must end as something other than completed (cancel, trip, shutdown).
    outcome: tuple[str, str | None] | None = None
    task: asyncio.Task[None] | None = None
    last_persist: float = 0.0
    persist_task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    #: Time spent paused (the ETA's observed pace counts only the time the machine ran).
    paused_s: float = 0.0
    paused_since: float | None = None

    def mark_paused(self) -> None:
        if self.paused_since is None:
            self.paused_since = time.monotonic()

    def mark_resumed(self) -> None:
        if self.paused_since is not None:
            self.paused_s += time.monotonic() - self.paused_since
            self.paused_since = None

    def running_s(self, elapsed_s: float) -> float:
        """``elapsed_s`` without the pauses."""
        paused = self.paused_s
        if self.paused_since is not None:
            paused += time.monotonic() - self.paused_since
        return max(0.0, elapsed_s - paused)

    #: The job's hold on the machine (laserd.machine_use), from its acceptance to its end.
    claim: Claim | None = None

    @property
    def id(self) -> int:
        return int(self.row["id"])


def job_view(row: dict[str, Any], active: ActiveJob | None = None) -> dict[str, Any]:
    """The API shape of a job (a stored row, completed with the live figures when active)."""
    view = {
        "id": row["id"],
        "file_id": row["file_id"],
        "user_id": row["user_id"],
        "file_name": row.get("file_name", ""),
        "state": row["state"],
        "lines_total": row["lines_total"],
        "lines_sent": row["lines_sent"],
        "lines_acked": row["lines_acked"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "elapsed_s": row["elapsed_s"],
        "error": row["error"],
        "pause_reason": row["pause_reason"],
        "source": row.get("source") or "web",
        "peer": row.get("peer"),
        "end_reason": row.get("end_reason"),
        "eta_s": None,
        "estimated_s": None,
    }
    if active is not None:
        elapsed = time.monotonic() - active.started_mono if active.started_mono is not None else 0.0
        view.update(
            state=active.state,
            lines_sent=active.lines_sent,
            lines_acked=active.lines_acked,
            started_at=active.started_at,
            elapsed_s=round(elapsed, 3),
            error=active.error,
            pause_reason=active.pause_reason,
        )
    total = max(1, int(view["lines_total"]))
    progress = min(1.0, view["lines_acked"] / total)
    if view["state"] == "completed":
        progress = 1.0
    view["progress"] = round(progress, 4)
    if active is not None:
        view["estimated_s"] = active.estimated_s
    if active is not None and view["state"] in ("running", "paused"):
        view["eta_s"] = _eta(
            active.running_s(view["elapsed_s"]),
            progress,
            active.estimated_s,
            lines=(int(view["lines_acked"]), int(view["lines_total"])),
            checkpoints=active.checkpoints,
        )
    return view


def alarm_details(alarm: Alarm | None) -> dict[str, Any] | None:
    """The controller's alarm as the API shows it (``{"code", "message"}``, API.md)."""
    return None if alarm is None else {"code": alarm.code, "message": alarm.message}


#: The observed pace corrects the model fully once the model says this much time has run.
PACE_FULL_WEIGHT_S = 30.0


def _eta(
    elapsed_s: float,
    progress: float,
    estimated_s: float | None,
    *,
    lines: tuple[int, int] = (0, 0),
    checkpoints: list[list[float]] | None = None,
) -> float | None:
    """Seconds left. With the file's checkpoint table: the model's time for the lines not yet
    acknowledged (right from the first second), scaled by the observed pace (the elapsed time
    over the model's time for the lines done so far), trusted more as the job runs."""
    acked, total = lines
    if estimated_s and checkpoints:
        model_done = elapsed_at(checkpoints, acked, total, estimated_s)
        remaining = max(0.0, estimated_s - model_done)
        if model_done > 1.0 and elapsed_s > 1.0:
            ratio = min(2.0, max(0.5, elapsed_s / model_done))
            weight = min(1.0, model_done / PACE_FULL_WEIGHT_S)
            remaining *= 1.0 + weight * (ratio - 1.0)
        return round(remaining, 1)
    if progress >= 1.0:
        return 0.0
    if progress > 0.05 and elapsed_s > 2:
        return round(elapsed_s * (1 - progress) / progress, 1)
    if estimated_s:
        return round(estimated_s * (1 - progress), 1)
    return None
