"""A photo as a design: so image files get the same placement (rotation, mirror) as designs.

The raster pipeline places an image with its project's ``laser`` settings (origin and size,
axis-aligned). Wrapped as a one-image :class:`Design`, the image goes through
:func:`laserd.designs.design_to_gcode` instead, which adds what the raster pipeline lacks:
rotation and mirroring (the image is resampled onto the bed's axes first), the bed check with
the numbers, and the same report as a design file. Without a placement the result is where
the ``laser`` settings put it.
"""

from __future__ import annotations

from pathlib import Path as FsPath

from laserd.designs.geometry import Design, ImageItem, affine
from laserd.imaging.laser_settings import LaserSettings
from laserd.imaging.raster import load_grayscale
from laserd.schemas.designs import FillSettings, LayerSettings, Operation


def image_layer(laser: LaserSettings) -> LayerSettings:
    """The image layer that engraves as the project's ``laser`` settings say."""
    return LayerSettings(
        id=1,
        color="#000000",
        name="Image",
        operation=Operation.image,
        speed_mm_min=laser.speed_mm_min,
        power_pct=laser.power_max_pct,
        passes=laser.passes,
        air_assist=laser.air_assist,
        fill=FillSettings(
            interval_mm=laser.line_interval_mm,
            overscan_mm=min(laser.overscan_mm, 50.0),
            bidirectional=laser.bidirectional,
        ),
    )


def image_file_design(src: FsPath, laser: LaserSettings, *, max_megapixels: float) -> Design:
    """The image file at ``src`` as a design: one image layer, sized and placed by ``laser``
    (``width_mm``/``height_mm``, else one pixel per ``line_interval_mm``; ``origin_mm``)."""
    gray = load_grayscale(FsPath(src), max_megapixels)
    w_px, h_px = gray.size
    gw, gh = laser.size_px(w_px, h_px)
    w_mm, h_mm = gw * laser.line_interval_mm, gh * laser.line_interval_mm
    ox, oy = laser.origin_mm.x, laser.origin_mm.y
    # Pixel (0, 0) is the image's top-left corner: (ox, oy + h) on the bed, rows running down.
    matrix = affine(w_mm / w_px, 0.0, 0.0, -h_mm / h_px, ox, oy + h_mm)
    return Design(
        images=[ImageItem(gray, matrix, 1, FsPath(src).name)],
        layers=[image_layer(laser)],
        width_mm=w_mm,
        height_mm=h_mm,
    )
