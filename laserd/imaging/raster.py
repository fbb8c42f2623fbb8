"""Image → raster G-code, in row chunks, with numpy and Pillow.

Pipeline: open (size checked from the header before decoding: the decompression-bomb guard),
first frame, EXIF orientation, alpha over white, grayscale, one resample to the engraving grid
(one pixel per ``line_interval_mm``), then per chunk of rows: tone curve (brightness, contrast,
gamma, invert) through a 256-entry table, power per pixel (grayscale levels, threshold, Bayer
or error diffusion), and the G-code of those rows, written before the next chunk is touched.

The G-code text of each chunk is written by :class:`~laserd.imaging.raster_writer.RasterWriter`
(vectorised over the chunk's runs).

Coordinates: pixel column ``c`` spans ``origin.x + c·dx .. origin.x + (c+1)·dx``; image row
``r`` (0 at the top) is engraved at ``y = origin.y + (H-1-r)·dx``, so the image's lower-left
corner sits at the origin. Rows run top to bottom; with ``bidirectional`` every other engraved
row runs right to left. Blank rows are skipped and each row starts at its first burning pixel
and ends after its last. Travel uses G0 (in GRBL's laser mode the beam is always off in G0);
GRBL moves G0 at its maximum rate, so ``travel_mm_min`` is what the time estimate assumes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from laserd.errors import LaserdError
from laserd.gcode.estimate import estimate_file, estimate_stats
from laserd.gcode.output import OutputLimits, SpaceGuard, atomic_writer, fmt_mm
from laserd.gcode.planner import PlannerSettings
from laserd.gcode.segments import MotionStats
from laserd.imaging.dither import ErrorDiffuser, ordered
from laserd.imaging.laser_settings import Dither, LaserSettings
from laserd.imaging.raster_writer import RasterWriter

log = logging.getLogger(__name__)

Progress = Callable[[float], None]

#: Pixels per row chunk: bounds the temporary arrays, and small chunks stay in the CPU cache
#: (measured: 64 Ki pixels is about twice as fast as 1 Mi on the 2000×2000 benchmark).
CHUNK_PIXELS = 1 << 16


class ImageError(LaserdError):
    """The upload is not an image laserd can convert (truncated, unknown, too large)."""

    status, code, default_message = 422, "invalid_image", "The image cannot be read."


@dataclass(slots=True)
class RasterReport:
    stats: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    width_px: int = 0
    height_px: int = 0
    width_mm: float = 0.0
    height_mm: float = 0.0


# --------------------------------------------------------------------------- image loading


def load_grayscale(src: Path, max_megapixels: float) -> Image.Image:
    """Decode ``src`` to an 8-bit grayscale image, refusing bombs before decoding them."""
    try:
        im = Image.open(src)
    except UnidentifiedImageError as exc:
        raise ImageError("the file is not an image format laserd reads") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"the image is too large to decode safely: {exc}") from exc
    except OSError as exc:
        raise ImageError(f"the image cannot be opened: {exc}") from exc
    with im:
        w, h = im.size
        megapixels = w * h / 1e6
        if megapixels > max_megapixels or w <= 0 or h <= 0:
            raise ImageError(
                f"the image is {w}×{h} pixels ({megapixels:.1f} MP); "
                f"the limit is {max_megapixels:g} MP",
                code="image_too_large",
            )
        try:
            im.seek(0)  # animated GIF/WebP/TIFF: the first frame
            im.load()
            return _to_gray(ImageOps.exif_transpose(im) or im)
        except Image.DecompressionBombError as exc:
            raise ImageError(f"the image is too large to decode safely: {exc}") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"the image is truncated or corrupt: {exc}") from exc


def _to_gray(im: Image.Image) -> Image.Image:
    """Grayscale with any transparency composited over white (unburnt material)."""
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        # Deep grays: 16-bit always spans 0..65535; 32-bit "I" and float "F" are judged by
        # their largest value (0..1 floats, 0..255 or 0..65535 integers).
        arr = np.asarray(im, dtype=np.float32)
        peak = float(arr.max()) if arr.size else 0.0
        if im.mode.startswith("I;16") or peak > 255:
            scale = 255.0 / 65535.0
        elif im.mode == "F" and peak <= 1.0:
            scale = 255.0
        else:
            scale = 1.0
        return Image.fromarray(np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8), "L")
    has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        im.mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    if has_alpha:
        la = im.convert("RGBA").convert("LA") if im.mode != "LA" else im
        gray, alpha = la.split()
        white = Image.new("L", la.size, 255)
        return Image.composite(gray, white, alpha)
    return im.convert("L")


# --------------------------------------------------------------------------- tone and power


def lightness_lut(laser: LaserSettings) -> np.ndarray:
    """Lightness 0..1 per gray byte after brightness, contrast and gamma (float64)."""
    v = np.arange(256, dtype=np.float64) / 255.0
    v = v + laser.brightness / 100.0
    factor = ((laser.contrast + 100.0) / 100.0) ** 2
    v = np.clip((v - 0.5) * factor + 0.5, 0.0, 1.0)
    return v ** (1.0 / laser.gamma)


def darkness_lut(laser: LaserSettings) -> np.ndarray:
    """How much each gray byte should burn: 0 (not at all) .. 1 (fully), invert applied."""
    v = lightness_lut(laser)
    return (v if laser.invert else 1.0 - v).astype(np.float32)


def power_s(pct: float, max_power_s: int) -> int:
    return round(pct / 100.0 * max_power_s)


def grayscale_lut(laser: LaserSettings, max_power_s: int) -> np.ndarray:
    """S value per gray byte in grayscale mode: ``power_levels`` steps from min to max power.

    Level 0 (nothing to burn) is always S0, even with a minimum power: white stays unburnt.
    """
    levels = laser.power_levels
    dark = darkness_lut(laser).astype(np.float64)
    level = np.rint(dark * (levels - 1)).astype(np.int64)
    pmin, pmax = laser.power_min_pct, laser.power_max_pct
    pct = pmin + (pmax - pmin) * level / (levels - 1)
    s = np.rint(pct / 100.0 * max_power_s).astype(np.uint16)
    s[level == 0] = 0
    return s


def threshold_lut(laser: LaserSettings) -> np.ndarray:
    """Burn mask per gray byte: lighter than ``threshold`` stays, unless inverted."""
    burn = lightness_lut(laser) * 255.0 < laser.threshold - 1e-9
    mask: np.ndarray = burn != laser.invert
    return mask


def iter_power_rows(
    gray: np.ndarray, laser: LaserSettings, max_power_s: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_row, S values as uint16 [rows, W])`` chunk by chunk, top to bottom."""
    h, w = gray.shape
    s_on = np.uint16(power_s(laser.power_max_pct, max_power_s))
    mode = laser.dither
    rows = max(1, CHUNK_PIXELS // max(1, w))
    if mode is Dither.grayscale:
        lut = grayscale_lut(laser, max_power_s)
    elif mode is Dither.threshold:
        lut = np.where(threshold_lut(laser), s_on, 0).astype(np.uint16)
    elif mode is Dither.floyd_steinberg:
        # Pillow's C Floyd–Steinberg on the tone-mapped image (0 = burn).
        tone = np.rint(255.0 * (1.0 - darkness_lut(laser))).astype(np.uint8)
        dithered = Image.fromarray(tone[gray], "L").convert("1", dither=Image.Dither.FLOYDSTEINBERG)
        burn_all = ~np.asarray(dithered, dtype=bool)
        del dithered
        for r0 in range(0, h, rows):
            yield r0, np.where(burn_all[r0 : r0 + rows], s_on, 0).astype(np.uint16)
        return
    else:
        dark = darkness_lut(laser)
    if mode in (Dither.grayscale, Dither.threshold, Dither.ordered):
        for r0 in range(0, h, rows):
            block = gray[r0 : r0 + rows]
            if mode is Dither.ordered:
                yield r0, np.where(ordered(dark[block], r0), s_on, 0).astype(np.uint16)
            else:
                yield r0, lut[block]
        return
    diffuser = ErrorDiffuser(mode.value, w)
    band = ErrorDiffuser.band_rows(w, diffuser.k)
    for b0 in range(0, h, band):
        burn = diffuser.process(dark[gray[b0 : b0 + band]])
        for r in range(0, burn.shape[0], rows):  # hand the writer cache-sized chunks
            yield b0 + r, np.where(burn[r : r + rows], s_on, 0).astype(np.uint16)


def prepare(src: Path, laser: LaserSettings, max_megapixels: float) -> np.ndarray:
    """Load and resample ``src`` to the engraving grid: uint8 gray [H, W], row 0 at the top."""
    im = load_grayscale(src, max_megapixels)
    w_px, h_px = laser.size_px(*im.size)
    if w_px * h_px / 1e6 > max_megapixels:
        raise ImageError(
            f"at {laser.line_interval_mm:g} mm per line the engraving would be {w_px}×{h_px} "
            f"pixels; the limit is {max_megapixels:g} MP (use a larger line interval)",
            code="image_too_large",
        )
    if (w_px, h_px) != im.size:
        im = im.resize((w_px, h_px), Image.Resampling.LANCZOS)
    return np.asarray(im, dtype=np.uint8)


def engraving_grid(src: Path, laser: LaserSettings) -> tuple[int, int]:
    """The engraving's pixel grid from the image's header alone (no decoding), as
    :func:`prepare` will make it: EXIF orientation applied, then :meth:`LaserSettings.size_px`.
    """
    try:
        with Image.open(src) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except Image.DecompressionBombError as exc:
        raise ImageError(f"the image is too large to decode safely: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"the image cannot be opened: {exc}") from exc
    if orientation in (5, 6, 7, 8):  # rotated a quarter turn
        w, h = h, w
    return laser.size_px(max(1, w), max(1, h))


def predict_gcode_bytes(
    width_px: int, height_px: int, laser: LaserSettings, max_power_s: int
) -> int:
    """The most bytes :func:`image_to_gcode` can write for this grid and these settings.

    The worst picture (noise) changes power at every pixel, so every pixel is one line
    ``X<x>S<s>``; each row adds a travel, a run-in and a run-out; every pass repeats the body.
    Words are counted at their longest, so the bound holds for any picture; for noise it is
    about 1.1–1.4 times the real size (the tests check both).
    """
    dx, ovs = laser.line_interval_mm, laser.overscan_mm
    ox, oy = laser.origin_mm.x, laser.origin_mm.y
    x_w = _coord_width(ox - ovs, ox + width_px * dx + ovs, (dx, ox, ovs))
    y_w = _coord_width(oy, oy + (height_px - 1) * dx, (dx, oy))
    s_w = len(str(max_power_s))
    feed_w = len(fmt_mm(laser.speed_mm_min, 1))
    per_pixel = 1 + x_w + 1 + s_w + 1  # X<x>S<s>\n
    per_row = (3 + x_w + 1 + y_w + 1) + (3 + x_w + 2 + 1 + feed_w + 1) + (1 + x_w + 3)
    body = height_px * (per_row + width_px * per_pixel)
    return 16 + laser.passes * body


def _coord_width(lo: float, hi: float, steps: tuple[float, ...]) -> int:
    """The longest :func:`fmt_mm` text of a coordinate between ``lo`` and ``hi`` that is a sum
    of multiples of ``steps``: sign, integer digits, and the decimals the steps can need."""
    decimals = next(
        (k for k in range(3) if all(abs(s * 10**k - round(s * 10**k)) < 1e-6 for s in steps)), 3
    )
    whole = len(str(int(max(abs(lo), abs(hi)))))
    sign = 1 if lo < 0 else 0
    return sign + whole + (1 + decimals if decimals else 0)


def power_map(
    src: Path, laser: LaserSettings, *, max_power_s: int, max_megapixels: float
) -> np.ndarray:
    """The whole intended S map [H, W] (row 0 at the top): what the G-code must reproduce."""
    gray = prepare(src, laser, max_megapixels)
    return np.vstack([s for _, s in iter_power_rows(gray, laser, max_power_s)])


def image_to_gcode(
    src: Path,
    out: Path,
    laser: LaserSettings,
    *,
    max_power_s: int,
    max_megapixels: float,
    bed_mm: tuple[float, float],
    progress: Progress | None = None,
    limits: OutputLimits | None = None,
    planner: PlannerSettings | None = None,
) -> RasterReport:
    """Convert an image to raster G-code at ``out`` (atomically); return stats and warnings.

    Synchronous and CPU-bound: run it in a worker. ``stats`` has the same shape and meaning
    as :func:`laserd.gcode.analyse_gcode`'s: bounds and distances computed while writing, the
    time estimate by replaying the written file through the planner model with ``planner``
    (the controller's settings; GRBL laser defaults when None).
    With ``limits``, the largest possible output is checked before the image is even decoded
    (:class:`~laserd.errors.OutputTooLarge` with the numbers), and the size and the free
    space again while writing (:class:`~laserd.gcode.output.SpaceGuard`).
    """
    if limits is not None:
        w_px, h_px = engraving_grid(Path(src), laser)
        limits.check_predicted(
            predict_gcode_bytes(w_px, h_px, laser, max_power_s),
            "this image",
            f" ({w_px}×{h_px} pixels × {laser.passes} pass{'es' if laser.passes > 1 else ''})",
        )
    gray = prepare(Path(src), laser, max_megapixels)
    h, w = gray.shape
    if progress is not None:
        progress(0.05)
    with atomic_writer(Path(out)) as fh:
        guard = SpaceGuard(fh, limits) if limits is not None else None
        writer = RasterWriter(fh, laser, w, h, max_power_s, bed_x_mm=bed_mm[0])
        lines = _write_passes(fh, writer, gray, max_power_s, guard, progress)
    stats = _stats(writer, laser, lines)
    stats_out = stats.as_dict()
    stats_out.update(estimate_stats(estimate_file(Path(out), planner or PlannerSettings())))
    warnings = stats.bed_warnings(bed_mm)
    if writer.burn_px == 0:
        warnings.append("nothing to engrave: every pixel maps to zero power")
    if progress is not None:
        progress(1.0)
    return RasterReport(
        stats=stats_out,
        warnings=warnings,
        width_px=w,
        height_px=h,
        width_mm=w * laser.line_interval_mm,
        height_mm=h * laser.line_interval_mm,
    )


def _write_passes(
    fh: BinaryIO,
    writer: RasterWriter,
    gray: np.ndarray,
    max_power_s: int,
    guard: SpaceGuard | None,
    progress: Progress | None,
) -> int:
    """Header, the first pass chunk by chunk, copies of it for the other passes, trailer;
    return the number of lines written. Progress runs from 5 % to 95 % over the first pass."""
    laser = writer.laser
    h = gray.shape[0]
    fh.write(writer.header())
    lines = 2 + (1 if laser.air_assist else 0)
    body_start = fh.tell()
    body_lines = 0
    for r0, s_rows in iter_power_rows(gray, laser, max_power_s):
        body_lines += writer.write_rows(r0, s_rows)
        if guard is not None:
            guard.check()
        if progress is not None:
            progress(0.05 + 0.9 * min(1.0, (r0 + s_rows.shape[0]) / h))
    body_end = fh.tell()
    if laser.passes > 1 and body_lines:
        _repeat(fh, body_start, body_end, laser.passes - 1, guard, progress)
    fh.write(writer.trailer())
    return lines + body_lines * laser.passes + 1 + (1 if laser.air_assist else 0)


def _repeat(
    fh: BinaryIO,
    start: int,
    end: int,
    times: int,
    guard: SpaceGuard | None = None,
    progress: Progress | None = None,
) -> None:
    """Append ``times`` copies of bytes ``start..end`` of the file being written (the last
    5 % of the progress: copying 50 passes of a big raster takes a while)."""
    fh.flush()
    for done in range(times):
        pos = start
        while pos < end:
            fh.seek(pos)
            data = fh.read(min(1 << 20, end - pos))
            fh.seek(0, 2)
            fh.write(data)
            pos += len(data)
            if guard is not None:
                guard.check()
            if progress is not None:
                progress(0.95 + 0.05 * (done + (pos - start) / (end - start)) / times)
    fh.seek(0, 2)


def _stats(writer: RasterWriter, laser: LaserSettings, lines: int) -> MotionStats:
    """Distances and time of the whole job from the per-pass figures."""
    st = writer.stats
    st.lines = lines
    passes = laser.passes
    if writer.travel.first is None:
        return st
    dx = laser.line_interval_mm
    burn_mm = writer.burn_px * dx
    feed_off_mm = writer.gap_px * dx + 2 * laser.overscan_mm * writer.rows_engraved
    fx, fy = writer.travel.first
    lx, ly = writer.travel.last or (fx, fy)
    g0_mm = writer.travel.g0_mm * passes + math.hypot(fx, fy)
    g0_mm += (passes - 1) * math.hypot(fx - lx, fy - ly)
    st.laser_on_mm = burn_mm * passes
    st.travel_mm = feed_off_mm * passes + g0_mm
    st.estimated_s = (
        (burn_mm + feed_off_mm) * passes / laser.speed_mm_min + g0_mm / laser.travel_mm_min
    ) * 60.0
    return st
