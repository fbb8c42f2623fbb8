"""Design → G-code and preview: the whole pipeline, as the processing worker runs it.

read (SVG or DXF) → layers (defaults, then the user's stored settings) → placement (one affine
transform; refused off the bed) → plan → G-code: vector runs through
:class:`~laserd.designs.emit.VectorWriter`, image layers through the raster pipeline
(:func:`laserd.imaging.raster.image_to_gcode`) → the analyser every G-code file goes through
(:func:`laserd.gcode.analyse_gcode`: validation, statistics, warnings, the streamed copy) →
the preview, each layer drawn in its colour.

Synchronous and CPU-bound: only the processing worker calls it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import numpy as np
from PIL import Image

from laserd.designs.emit import HEADER, VectorWriter
from laserd.designs.errors import DesignError
from laserd.designs.flatten import DEFAULT_TOLERANCE_MM
from laserd.designs.geometry import Design, ImageItem
from laserd.designs.layers import RawDesign, apply_layer_settings, build_layers
from laserd.designs.placement import check_on_bed, place, placed_box
from laserd.designs.plan import Plan, Run, plan_design
from laserd.gcode import analyse_gcode
from laserd.gcode.output import OutputLimits
from laserd.gcode.planner import PlannerSettings
from laserd.imaging.laser_settings import LaserSettings, OriginMm
from laserd.imaging.preview import render_preview
from laserd.imaging.raster import image_to_gcode
from laserd.schemas.designs import LayerSettings, Operation, Placement

Progress = Callable[[float], None]

#: Share of the progress bar for reading and planning, for writing and analysis; the rest is
#: the preview.
READ_SHARE, WRITE_SHARE = 0.3, 0.55


@dataclass(slots=True)
class DesignReport:
    """What the file row keeps: ``stats`` (as every file), warnings, the layers (defaults merged
    with the stored ones), and the design's size before and after placement."""

    stats: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    design: dict[str, Any] = field(default_factory=dict)


def read_design(src: FsPath, kind: str, tolerance_mm: float = DEFAULT_TOLERANCE_MM) -> Design:
    """Parse an SVG or DXF file into a :class:`Design` with default layers."""
    raw: RawDesign
    if kind == "svg":
        from laserd.designs.svg import read_svg

        raw = read_svg(src, tolerance_mm)
    elif kind == "dxf":
        from laserd.designs.dxf import read_dxf

        raw = read_dxf(src, tolerance_mm)
    else:
        raise DesignError(f"files of kind {kind!r} are not designs")
    return build_layers(raw)


def convert_file(
    src: FsPath,
    kind: str,
    gcode_out: FsPath,
    *,
    bed_mm: tuple[float, float],
    max_power_s: int,
    layers: list[dict[str, Any]] | None = None,
    placement: dict[str, Any] | None = None,
    laser: LaserSettings | None = None,
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    rapid_mm_min: float = 5000.0,
    preview_out: FsPath | None = None,
    thumb_out: FsPath | None = None,
    progress: Progress | None = None,
    planner: PlannerSettings | None = None,
    limits: OutputLimits | None = None,
) -> DesignReport:
    """Read ``src`` and write its G-code (and previews); the processing worker's entry.
    ``planner``: the controller's settings for the time estimate (GRBL laser defaults)."""
    design = read_design(FsPath(src), kind, tolerance_mm)
    if layers:
        design = apply_layer_settings(design, [LayerSettings.model_validate(x) for x in layers])
    if progress is not None:
        progress(READ_SHARE / 2)
    return design_to_gcode(
        design,
        gcode_out,
        bed_mm=bed_mm,
        max_power_s=max_power_s,
        placement=Placement.model_validate(placement) if placement else None,
        laser=laser,
        tolerance_mm=tolerance_mm,
        rapid_mm_min=rapid_mm_min,
        preview_out=preview_out,
        thumb_out=thumb_out,
        progress=progress,
        planner=planner,
        limits=limits,
    )


def design_to_gcode(
    design: Design,
    gcode_out: FsPath,
    *,
    bed_mm: tuple[float, float],
    max_power_s: int,
    placement: Placement | None = None,
    laser: LaserSettings | None = None,
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    rapid_mm_min: float = 5000.0,
    preview_out: FsPath | None = None,
    thumb_out: FsPath | None = None,
    progress: Progress | None = None,
    optimise: bool = True,
    planner: PlannerSettings | None = None,
    limits: OutputLimits | None = None,
) -> DesignReport:
    """Plan a (parsed or generated) design and write its G-code to ``gcode_out`` atomically."""
    gcode_out = FsPath(gcode_out)
    placed, plan = _placed_plan(design, placement, bed_mm, tolerance_mm, optimise)
    if progress is not None:
        progress(READ_SHARE)
    work = FsPath(tempfile.mkdtemp(prefix=".design-", dir=gcode_out.parent))
    try:
        parts = _write_parts(plan, work, bed_mm, max_power_s, laser or LaserSettings())
        whole = _join([piece for piece, _color in parts], work / "design.gcode")
        report = analyse_gcode(
            whole,
            gcode_out,
            bed_mm=bed_mm,
            max_power_s=max_power_s,
            rapid_mm_min=rapid_mm_min,
            progress=_scaled(progress, READ_SHARE, READ_SHARE + WRITE_SHARE),
            planner=planner,
            limits=limits,
        )
        if preview_out is not None:
            render_preview(
                gcode_out,
                FsPath(preview_out),
                bed_mm=bed_mm,
                thumb_out=FsPath(thumb_out) if thumb_out is not None else None,
                bounds_mm=report.stats["bounds"] if report.stats.get("lines") else None,
                max_power_s=max_power_s,
                parts=parts,
                progress=_scaled(progress, READ_SHARE + WRITE_SHARE, 1.0),
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = _describe(design, placed, placement, report.stats)
    warnings = list(dict.fromkeys(placed.warnings + plan.warnings + report.warnings))
    if progress is not None:
        progress(1.0)
    return DesignReport(
        stats=report.stats,
        warnings=warnings,
        layers=[lay.model_dump(mode="json") for lay in design.layers],
        design=info,
    )


def _placed_plan(
    design: Design,
    placement: Placement | None,
    bed_mm: tuple[float, float],
    tolerance_mm: float,
    optimise: bool,
) -> tuple[Design, Plan]:
    """The design placed (and checked against the bed) and its plan; a plan that burns
    nothing is refused (:class:`DesignError`)."""
    placed = place(design, placement)
    check_on_bed(placed, bed_mm)
    plan = plan_design(placed, tolerance_mm=tolerance_mm, optimise=optimise)
    _refuse_empty(placed, plan)
    return placed, plan


def _join(pieces: list[FsPath], whole: FsPath) -> FsPath:
    """The layers' G-code pieces, in plan order, as one file."""
    with open(whole, "wb") as out:
        for piece in pieces:
            with open(piece, "rb") as fh:
                shutil.copyfileobj(fh, out)
    return whole


def _describe(
    design: Design, placed: Design, placement: Placement | None, stats: dict[str, Any]
) -> dict[str, Any]:
    """The design's own figures (document size, counts, placed box) for the file's stats;
    ``stats`` gets ``design_box``, the placed box that ``placement.x_mm``/``y_mm`` name."""
    box = placed.bounds()
    source_box = design.bounds()
    if source_box is not None:
        x0, y0, x1, y1 = placed_box(source_box, placement)
        stats["design_box"] = {"xmin": round(x0, 4), "xmax": round(x1, 4),
                               "ymin": round(y0, 4), "ymax": round(y1, 4)}  # fmt: skip
    info: dict[str, Any] = {
        "document_mm": {"width": round(design.width_mm, 4), "height": round(design.height_mm, 4)},
        "paths": len(design.paths),
        "images": len(design.images),
    }
    if box is not None:
        info["placed_mm"] = {"xmin": round(box[0], 4), "ymin": round(box[1], 4),
                             "xmax": round(box[2], 4), "ymax": round(box[3], 4)}  # fmt: skip
    return info


def _scaled(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """``progress`` mapped onto the share ``lo..hi`` of the bar."""
    if progress is None:
        return None
    report = progress
    return lambda f: report(lo + (hi - lo) * f)


def _refuse_empty(design: Design, plan: Plan) -> None:
    """A design that burns nothing says why, instead of producing an empty job."""
    if any(run.polylines or run.image is not None for run in plan.runs):
        return
    if not design.paths and not design.images:
        reason = "the design holds no shapes laserd can burn"
        if design.warnings:
            reason += " (" + "; ".join(design.warnings) + ")"
    elif all(lay.operation is Operation.off for lay in design.layers):
        reason = "every layer is switched off"
    else:
        reason = "no layer that is on has anything to burn"
        if plan.warnings:
            reason += ": " + "; ".join(plan.warnings)
    raise DesignError(f"nothing to burn: {reason}", code="nothing_to_burn")


def _hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _write_parts(
    plan: Plan, work: FsPath, bed_mm: tuple[float, float], max_power_s: int, base: LaserSettings
) -> list[tuple[FsPath, tuple[int, int, int] | None]]:
    """The G-code in consecutive files, one per run (the preview colours each by its layer)."""
    parts: list[tuple[FsPath, tuple[int, int, int] | None]] = []
    head = work / "part-0000.gcode"
    head.write_bytes(HEADER)
    parts.append((head, None))
    writer: VectorWriter | None = None
    for k, run in enumerate(plan.runs, start=1):
        piece = work / f"part-{k:04d}.gcode"
        if run.image is not None:
            if writer is not None:
                with open(piece.with_suffix(".end"), "wb") as fh:
                    writer.fh = fh
                    writer.finish()
                parts.append((piece.with_suffix(".end"), None))
                writer = None
            _raster_part(run, piece, work, bed_mm, max_power_s, base)
            parts.append((piece, None))
            continue
        with open(piece, "wb") as fh:
            if writer is None:
                writer = VectorWriter(fh, max_power_s=max_power_s, bed_mm=bed_mm)
            writer.fh = fh
            writer.write_run(run)
        parts.append((piece, _hex_rgb(run.layer.color)))
    if writer is not None:
        tail = work / "part-tail.gcode"
        with open(tail, "wb") as fh:
            writer.fh = fh
            writer.finish()
        parts.append((tail, None))
    return parts


def _raster_part(
    run: Run,
    piece: FsPath,
    work: FsPath,
    bed_mm: tuple[float, float],
    max_power_s: int,
    base: LaserSettings,
) -> None:
    """An embedded image, resampled onto the bed's axes, engraved by the raster pipeline."""
    assert run.image is not None
    layer = run.layer
    dx = layer.fill.interval_mm
    gray, origin = _image_on_grid(run.image, dx)
    png = work / f"{piece.stem}.png"
    gray.save(png)
    laser = base.model_copy(
        update={
            "speed_mm_min": layer.speed_mm_min,
            "power_max_pct": layer.power_pct,
            "power_min_pct": min(base.power_min_pct, layer.power_pct),
            "passes": layer.passes,
            "air_assist": layer.air_assist,
            "line_interval_mm": dx,
            "overscan_mm": layer.fill.overscan_mm,
            "bidirectional": layer.fill.bidirectional,
            "origin_mm": OriginMm(x=origin[0], y=origin[1]),
            "width_mm": gray.size[0] * dx,
            "height_mm": gray.size[1] * dx,
        }
    )
    LaserSettings.model_validate(laser.model_dump())
    image_to_gcode(
        png, piece, laser, max_power_s=max_power_s, max_megapixels=200.0, bed_mm=bed_mm
    )


def _image_on_grid(item: ImageItem, dx: float) -> tuple[Image.Image, tuple[float, float]]:
    """The image as grayscale on an axis-aligned grid of ``dx`` mm, white outside it, and the
    lower-left corner of that grid on the bed."""
    corners = item.corners()
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    w_px = max(1, round(float(hi[0] - lo[0]) / dx))
    h_px = max(1, round(float(hi[1] - lo[1]) / dx))
    if w_px * h_px > 200_000_000:
        raise DesignError(f"{item.source}: at {dx:g} mm per line the image would be too large")
    src = item.image
    if src.mode in ("RGBA", "LA", "PA") or "transparency" in src.info:
        rgba = src.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        src = Image.alpha_composite(white, rgba)
    gray = src.convert("L")
    lin = item.matrix[:2, :2]
    if abs(lin[0, 1]) <= 1e-9 * abs(lin[0, 0]) and abs(lin[1, 0]) <= 1e-9 * abs(lin[1, 1]):
        # Not turned: flips and one Lanczos resize, as the raster pipeline resamples photos.
        if lin[0, 0] < 0:
            gray = gray.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if lin[1, 1] > 0:  # pixel rows run down the page; a mirrored image runs them up
            gray = gray.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        return gray.resize((w_px, h_px), Image.Resampling.LANCZOS), (float(lo[0]), float(lo[1]))
    # Output pixel (i, j) → bed mm → source pixel, through the inverse of the image map.
    to_bed = np.array(
        [[dx, 0.0, float(lo[0])], [0.0, -dx, float(lo[1]) + h_px * dx], [0.0, 0.0, 1.0]]
    )
    inv = np.linalg.inv(item.matrix) @ to_bed
    a, b, c = inv[0]
    d, e, f = inv[1]
    out = gray.transform(
        (w_px, h_px),
        Image.Transform.AFFINE,
        (a, b, c, d, e, f),
        resample=Image.Resampling.BILINEAR,
        fillcolor=255,
    )
    return out, (float(lo[0]), float(lo[1]))
