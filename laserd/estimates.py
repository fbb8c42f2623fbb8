"""Which controller settings the time estimates use, and keeping the estimates current.

Estimates replay each file through the model of GRBL's planner (:mod:`laserd.gcode.planner`)
with the controller's own ``$`` values. Those are learnt when the link reads ``$$`` on
connect; the last values read are kept in ``<state_dir>/controller_settings.json`` so that
files uploaded while the controller is off are estimated for the right machine. Before any
controller was ever connected, GRBL laser defaults are used. When the values that matter
change, :class:`EstimateProfile` says so and the processing queue re-estimates the ready
files off the event loop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from laserd.planner_settings import PlannerSettings

log = logging.getLogger(__name__)

FILE_NAME = "controller_settings.json"


class EstimateProfile:
    """The ``$`` values estimates use now (defaults until a controller was read)."""

    def __init__(self, state_dir: Path, baudrate: int = 115200) -> None:
        self._path = Path(state_dir) / FILE_NAME
        self.baudrate = baudrate
        self._dollars = PlannerSettings().as_dollars()
        self.from_controller = False
        self._load()

    def _load(self) -> None:
        try:
            raw = json.loads(self._path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", self._path, exc)
            return
        if isinstance(raw, dict):
            settings = PlannerSettings.from_dollars(raw, self.baudrate)
            self._dollars = settings.as_dollars()
            self.from_controller = True

    @property
    def dollars(self) -> dict[str, float]:
        """The values used, keyed by ``$`` number (as in ``stats.estimate_settings``)."""
        return dict(self._dollars)

    @property
    def settings(self) -> PlannerSettings:
        return PlannerSettings.from_dollars(self._dollars, self.baudrate)

    def differs_from(self, used: dict[str, Any] | None) -> bool:
        """Whether an estimate made with ``used`` values is out of date."""
        if not used:
            return True
        try:
            return any(float(used.get(k, "nan")) != v for k, v in self._dollars.items())
        except (TypeError, ValueError):
            return True

    def update(self, link_settings: dict[str, str]) -> bool:
        """Take the values a controller reported (``{"$110": "6000", ...}``); True when the
        values that matter changed (and were saved)."""
        relevant = {k: link_settings.get(f"${k}") for k in PlannerSettings.DOLLARS}
        if any(v is None for v in relevant.values()):
            return False  # not read yet (or not a complete $$ listing)
        new = PlannerSettings.from_dollars(relevant, self.baudrate).as_dollars()
        if new == self._dollars and self.from_controller:
            return False
        changed = new != self._dollars
        self._dollars = new
        self.from_controller = True
        self._save()
        return changed

    def _save(self) -> None:
        """Best effort: the values stay in use from memory when the file cannot be written
        (a full disk, no descriptor left); they are read again at the next connection."""
        tmp: str | None = None
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".controller_settings.", suffix=".tmp",
                                       dir=self._path.parent)  # fmt: skip
            with os.fdopen(fd, "w") as fh:
                json.dump(self._dollars, fh)
            os.replace(tmp, self._path)
        except OSError as exc:
            log.warning("cannot save %s: %s", self._path, exc)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
