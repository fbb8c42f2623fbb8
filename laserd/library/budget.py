"""How much G-code a file may make, checked before anything is converted (issue 12, item 9).

An upload is small; what it becomes need not be: a 1 MB noise picture engraved 390 mm wide at
0.05 mm with 50 passes made 32 GB of G-code in five minutes and filled the disk. Wherever the
laser settings of an image become known — its upload into a project, a re-process, a change
of the project's settings — the largest G-code it could make is predicted from the image's
header and the settings (:func:`laserd.imaging.raster.predict_gcode_bytes`: pixels × passes × bytes
per pixel) and refused with 422 ``output_too_large`` when it exceeds ``[processing]
max_gcode_mb`` or the free disk space less ``[storage] min_free_mb``. The worker checks again
before converting (space may have gone meanwhile) and while writing.

G-code uploads need no prediction: their streamed copy is never larger than the upload.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from laserd.gcode.output import OutputLimits
from laserd.imaging.laser_settings import LaserSettings
from laserd.imaging.raster import ImageError, engraving_grid, predict_gcode_bytes
from laserd.settings import Settings


def output_limits(settings: Settings) -> OutputLimits:
    """The limits every generated G-code file of this daemon is held to."""
    return OutputLimits(
        max_bytes=settings.processing.max_gcode_mb * 1024 * 1024,
        reserve_bytes=settings.storage.min_free_mb * 1024 * 1024,
        directory=settings.storage.state_dir,
    )


def check_image_output(
    limits: OutputLimits, src: Path, name: str, laser: LaserSettings, max_power_s: int
) -> None:
    """Refuse (:class:`~laserd.errors.OutputTooLarge`) an image whose G-code could be too big.

    Reads the image's header only. An unreadable header is let through: processing says
    what is wrong with the image.
    """
    try:
        w_px, h_px = engraving_grid(src, laser)
    except ImageError:
        return
    passes = f"{laser.passes} pass{'es' if laser.passes > 1 else ''}"
    limits.check_predicted(
        predict_gcode_bytes(w_px, h_px, laser, max_power_s),
        f"'{name}'",
        f" ({w_px}×{h_px} pixels × {passes})",
    )


async def check_output_budget(
    settings: Settings,
    files: Iterable[dict[str, Any]],
    laser: LaserSettings,
    limits: OutputLimits | None = None,
) -> None:
    """:func:`check_image_output` for every image among ``files`` (rows), off the event loop."""
    images = [f for f in files if f["kind"] == "image"]
    if not images:
        return
    limits = limits or output_limits(settings)
    max_s = settings.processing.max_power_s

    def check_all() -> None:
        for f in images:
            src = settings.uploads_dir / f["stored_name"]
            check_image_output(limits, src, f["name"], laser, max_s)

    await asyncio.get_running_loop().run_in_executor(None, check_all)
