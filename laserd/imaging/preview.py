"""Toolpath → PNG: what the laser will do, drawn from the G-code that will be streamed.

The file is streamed through :class:`laserd.gcode.ProgramReader` (constant memory; the fast
vectorised path makes millions of segments cheap) and every segment is sampled at least once
per output pixel with numpy. Burning moves are averaged per pixel, weighted by length, so a
dithered or grayscale raster engraved at 0.1 mm shows its tones at preview scale instead of
turning black; laser-off moves (G0 and S0 feeds) are drawn faint. ``np.bincount`` does the
accumulation, which is far faster than per-segment drawing calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from laserd.gcode.output import atomic_writer
from laserd.gcode.program import ProgramReader
from laserd.gcode.segments import Segments

Progress = Callable[[float], None]

#: Samples drawn per batch: bounds the temporary arrays whatever the segment lengths.
MAX_SAMPLES = 1 << 18
#: Segments longer than this many pixels are drawn by Pillow instead of sampled.
LONG_PX = 12.0
MAX_PEN_PX = 32
BACKGROUND = np.array([250, 250, 248], dtype=np.float32)
GRID = np.array([232, 234, 238], dtype=np.float32)
TRAVEL = np.array([160, 190, 230], dtype=np.float32)  # G0
FEED_OFF = np.array([226, 234, 244], dtype=np.float32)  # feed moves with the beam off (S0)
LONG_RAPID, LONG_FEED_OFF = 255, 128  # values in the long-move layer
BURN = np.array([25, 20, 15], dtype=np.float32)


def _accumulate(target: np.ndarray, idx: np.ndarray, weights: np.ndarray) -> None:
    """``target[idx] += weights``, repeated indices summed, in the order ``np.bincount`` sums.

    A batch that touches few pixels of a large canvas (a design with many colour layers draws
    one small batch per layer: a 10 × 10 material test grid has 101) adds only to its own
    pixels instead of building and adding a canvas-sized count each time; the sums are the
    same numbers either way.
    """
    if idx.size * 8 < target.shape[0]:
        pixels, inverse = np.unique(idx, return_inverse=True)
        target[pixels] += np.bincount(inverse, weights=weights)
    else:
        target += np.bincount(idx, weights=weights, minlength=target.shape[0])


@dataclass(slots=True)
class PreviewInfo:
    width_px: int
    height_px: int
    view_mm: tuple[float, float, float, float]  # xmin, xmax, ymin, ymax


class _Canvas:
    """Accumulators for one picture of the area ``view_mm`` at ``scale`` pixels per mm."""

    def __init__(self, view_mm: tuple[float, float, float, float], size_px: int) -> None:
        xmin, xmax, ymin, ymax = view_mm
        span = max(xmax - xmin, ymax - ymin, 1e-6)
        self.scale = (size_px - 1) / span
        self.w = max(1, round((xmax - xmin) * self.scale) + 1)
        self.h = max(1, round((ymax - ymin) * self.scale) + 1)
        self.xmin, self.ymax = xmin, ymax
        n = self.w * self.h
        self.burn = np.zeros(n, dtype=np.float64)  # length-weighted power fraction
        self.feed = np.zeros(n, dtype=np.float64)  # length of feed moves
        self.travel = np.zeros(n, dtype=np.float64)  # length of G0 moves
        # Long segments (vector work) are drawn by Pillow, one C call each, instead of being
        # sampled pixel by pixel: burning ones at their power, the rest as travel.
        self.long_burn = Image.new("L", (self.w, self.h), 0)
        self.long_travel = Image.new("L", (self.w, self.h), 0)
        self._draw_burn = ImageDraw.Draw(self.long_burn)
        self._draw_travel = ImageDraw.Draw(self.long_travel)
        # Layer colours (designs): burn-weighted colour sums for sampled segments, and the
        # colour of long ones, so each layer is drawn in its own colour.
        self.tint: np.ndarray | None = None
        self.long_tint: Image.Image | None = None
        self._color: tuple[int, int, int] | None = None

    def draw(
        self, seg: Segments, max_power_s: float, color: tuple[int, int, int] | None = None
    ) -> None:
        """Accumulate ``seg``; burns are drawn in ``color`` (RGB) when given, else dark."""
        if len(seg) == 0:
            return
        self._color = _visible(color) if color is not None else None
        if self._color is not None and self.tint is None:
            self.tint = np.zeros((self.w * self.h, 4), dtype=np.float64)
            self.long_tint = Image.new("RGB", (self.w, self.h), (0, 0, 0))
        sx0 = (seg.x0 - self.xmin) * self.scale
        sx1 = (seg.x1 - self.xmin) * self.scale
        sy0 = (self.ymax - seg.y0) * self.scale
        sy1 = (self.ymax - seg.y1) * self.scale
        length = np.hypot(sx1 - sx0, sy1 - sy0)
        power = np.clip(seg.power_s / max_power_s, 0.0, 1.0)
        long = length > LONG_PX
        if long.any():
            self._draw_long(
                sx0[long], sy0[long], sx1[long], sy1[long], power[long], seg.rapid[long]
            )
            short = ~long
            sx0, sy0, sx1, sy1 = sx0[short], sy0[short], sx1[short], sy1[short]
            length, power, rapid = length[short], power[short], seg.rapid[short]
        else:
            rapid = seg.rapid
        samples = np.ceil(length).astype(np.int64) + 1
        start = 0
        n = length.size
        while start < n:
            # Take as many segments as fit the sample budget (at least one).
            csum = np.cumsum(samples[start:])
            stop = start + max(1, int(np.searchsorted(csum, MAX_SAMPLES, side="right")))
            self._draw_batch(slice(start, stop), sx0, sy0, sx1, sy1, length, samples, power, rapid)
            start = stop

    def _draw_long(
        self,
        x0: np.ndarray,
        y0: np.ndarray,
        x1: np.ndarray,
        y1: np.ndarray,
        power: np.ndarray,
        rapid: np.ndarray,
    ) -> None:
        level = np.rint(power * 255).astype(np.int64)
        coords = np.stack([x0, y0, x1, y1], axis=1).round(1).tolist()
        for (ax, ay, bx, by), ink, fast in zip(coords, level.tolist(), rapid.tolist(), strict=True):
            if ink > 0:
                self._draw_burn.line((ax, ay, bx, by), fill=ink)
                if self.long_tint is not None and self._color is not None:
                    ImageDraw.Draw(self.long_tint).line((ax, ay, bx, by), fill=self._color)
            else:
                off = LONG_RAPID if fast else LONG_FEED_OFF
                self._draw_travel.line((ax, ay, bx, by), fill=off)

    def _draw_batch(
        self,
        sl: slice,
        sx0: np.ndarray,
        sy0: np.ndarray,
        sx1: np.ndarray,
        sy1: np.ndarray,
        length: np.ndarray,
        samples: np.ndarray,
        power: np.ndarray,
        rapid: np.ndarray,
    ) -> None:
        counts = samples[sl]
        owner = np.repeat(np.arange(counts.size), counts)
        first = np.cumsum(counts) - counts
        step = np.arange(owner.size) - first[owner]
        denom = np.maximum(counts - 1, 1)[owner]
        t = step / denom
        x0, y0 = sx0[sl][owner], sy0[sl][owner]
        px = np.rint(x0 + (sx1[sl][owner] - x0) * t).astype(np.int64)
        py = np.rint(y0 + (sy1[sl][owner] - y0) * t).astype(np.int64)
        inside = (px >= 0) & (px < self.w) & (py >= 0) & (py < self.h)
        idx = (py * self.w + px)[inside]
        weight = (np.maximum(length[sl], 0.5) / counts)[owner][inside]
        is_rapid = rapid[sl][owner][inside]
        if is_rapid.any():
            _accumulate(self.travel, idx[is_rapid], weight[is_rapid])
        feed = ~is_rapid
        if feed.any():
            w_feed = weight[feed]
            _accumulate(self.feed, idx[feed], w_feed)
            p = power[sl][owner][inside][feed]
            _accumulate(self.burn, idx[feed], w_feed * p)
            if self.tint is not None and self._color is not None:
                wp = w_feed * p
                for k, channel in enumerate((*self._color, 1)):
                    _accumulate(self.tint[:, k], idx[feed], wp * channel)

    def image(self, grid_mm: float | None, pen_px: int = 1) -> Image.Image:
        """Compose the picture; burns are widened to ``pen_px`` (the beam's width on screen)."""
        rgb = np.empty((self.h * self.w, 3), dtype=np.float32)
        rgb[:] = BACKGROUND
        if grid_mm:
            grid = np.zeros((self.h, self.w), dtype=bool)
            x_lines = np.arange(math.ceil(self.xmin / grid_mm) * grid_mm,
                                self.xmin + self.w / self.scale, grid_mm)  # fmt: skip
            y_lines = np.arange(math.floor(self.ymax / grid_mm) * grid_mm,
                                self.ymax - self.h / self.scale, -grid_mm)  # fmt: skip
            cols = np.rint((x_lines - self.xmin) * self.scale).astype(np.int64)
            rows = np.rint((self.ymax - y_lines) * self.scale).astype(np.int64)
            grid[:, cols[(cols >= 0) & (cols < self.w)]] = True
            grid[rows[(rows >= 0) & (rows < self.h)], :] = True
            rgb[grid.reshape(-1)] = GRID
        long_off = np.asarray(self.long_travel).reshape(-1)
        rgb[((self.feed > 0) & (self.burn <= 0)) | (long_off == LONG_FEED_OFF)] = FEED_OFF
        rgb[(self.travel > 0) | (long_off == LONG_RAPID)] = TRAVEL
        dark = np.zeros(self.w * self.h, dtype=np.float32)
        sampled = self.burn > 0
        dark[sampled] = self.burn[sampled] / self.feed[sampled]
        np.maximum(dark, np.asarray(self.long_burn).reshape(-1) / np.float32(255), out=dark)
        dark = _max_filter(dark.reshape(self.h, self.w), pen_px).reshape(-1)
        burnt = dark > 0
        # Even the faintest burn stays visible: a quarter of the way to full darkness at least.
        shade = 0.25 + 0.75 * dark[burnt]
        ink = np.broadcast_to(BURN, (int(burnt.sum()), 3)).copy()
        if self.tint is not None and self.long_tint is not None:
            colour = self._layer_colours(pen_px)
            has = colour[:, 3] > 0
            ink[has[burnt]] = colour[burnt & has, :3]
            shade = np.where(has[burnt], 1.0, shade)
        rgb[burnt] = BACKGROUND + (ink - BACKGROUND) * shade[:, None]
        return Image.fromarray(rgb.reshape(self.h, self.w, 3).round().astype(np.uint8), "RGB")

    def _layer_colours(self, pen_px: int) -> np.ndarray:
        """Per pixel: the burn-weighted layer colour (RGB) and 1 where one was drawn, else 0."""
        assert self.tint is not None and self.long_tint is not None
        out = np.zeros((self.w * self.h, 4), dtype=np.float32)
        weight = self.tint[:, 3]
        sampled = weight > 0
        out[sampled, :3] = self.tint[sampled, :3] / weight[sampled, None]
        out[sampled, 3] = 1.0
        long_rgb = np.asarray(self.long_tint, dtype=np.float32).reshape(-1, 3)
        drawn = long_rgb.any(axis=1)
        out[drawn, :3] = long_rgb[drawn]
        out[drawn, 3] = 1.0
        if pen_px > 1:  # widen like the burns themselves: nearest coloured pixel wins
            grid = out.reshape(self.h, self.w, 4)
            mask = grid[:, :, 3]
            for k in range(3):
                chan = np.where(mask > 0, grid[:, :, k] + 1.0, 0.0)
                grid[:, :, k] = _max_filter(chan, pen_px) - 1.0
            grid[:, :, 3] = _max_filter(mask, pen_px)
            out = grid.reshape(-1, 4)
        return out


def _visible(color: tuple[int, int, int]) -> tuple[int, int, int]:
    """A layer colour that shows on the light background: very light ones are darkened."""
    r, g, b = color
    light = 0.299 * r + 0.587 * g + 0.114 * b
    if light <= 200:
        return color
    f = 200.0 / light
    return (int(r * f), int(g * f), int(b * f))


def _max_filter(a: np.ndarray, size: int) -> np.ndarray:
    """Grey dilation with a ``size``×``size`` square (separable shifted maxima)."""
    if size <= 1:
        return a
    lo, hi = size // 2, size - 1 - size // 2
    rows = a.copy()
    for d in range(1, lo + 1):
        np.maximum(rows[:, d:], a[:, :-d], out=rows[:, d:])
    for d in range(1, hi + 1):
        np.maximum(rows[:, :-d], a[:, d:], out=rows[:, :-d])
    out = rows.copy()
    for d in range(1, lo + 1):
        np.maximum(out[d:], rows[:-d], out=out[d:])
    for d in range(1, hi + 1):
        np.maximum(out[:-d], rows[d:], out=out[:-d])
    return out


def _grid_step(scale_px_mm: float) -> float:
    """A grid of 1, 5, 10, 50 or 100 mm whose lines are at least 40 px apart."""
    for step in (1.0, 5.0, 10.0, 50.0, 100.0, 500.0):
        if step * scale_px_mm >= 40:
            return step
    return 1000.0


def render_preview(
    gcode: Path,
    png_out: Path,
    *,
    bed_mm: tuple[float, float],
    size_px: int = 1024,
    thumb_out: Path | None = None,
    thumb_px: int = 256,
    bounds_mm: dict[str, float] | None = None,
    max_power_s: float = 1000.0,
    pen_mm: float = 0.1,
    progress: Progress | None = None,
    parts: Sequence[tuple[Path, tuple[int, int, int] | None]] | None = None,
) -> PreviewInfo:
    """Draw the toolpath of ``gcode`` into ``png_out`` (and a thumbnail), atomically.

    The picture shows the bed, or, when ``bounds_mm`` (the file's ``stats.bounds``) is given,
    the job with a small margin, so small engravings stay legible. ``size_px`` is the longer
    side. Burns are drawn ``pen_mm`` wide (about a diode laser's spot), so a zoomed-in raster
    shows its image rather than its separate lines. Synchronous and CPU-bound: run it in a
    worker.

    ``parts`` (designs): the G-code file in consecutive pieces, each with the RGB colour its
    burns are drawn in (None: dark by power, as for any other file); the pieces are read in
    order with the modal state carried across, exactly as the whole file would be.
    """
    bx, by = bed_mm
    if bounds_mm is not None and bounds_mm["xmax"] >= bounds_mm["xmin"]:
        xmin, xmax = bounds_mm["xmin"], bounds_mm["xmax"]
        ymin, ymax = bounds_mm["ymin"], bounds_mm["ymax"]
        margin = max(xmax - xmin, ymax - ymin, 1.0) * 0.04
        view = (xmin - margin, xmax + margin, ymin - margin, ymax + margin)
    else:
        view = (0.0, float(bx), 0.0, float(by))
    canvas = _Canvas(view, size_px)
    if parts is None:
        reader = ProgramReader(Path(gcode), progress=progress)
        for chunk in reader.chunks():
            canvas.draw(chunk.segments, max_power_s)
    else:
        state = None
        for k, (piece, color) in enumerate(parts):
            reader = ProgramReader(Path(piece))
            if state is not None:
                reader.state = state
            for chunk in reader.chunks():
                canvas.draw(chunk.segments, max_power_s, color)
            state = reader.state
            if progress is not None:
                progress((k + 1) / len(parts))
    pen_px = int(min(MAX_PEN_PX, max(1, round(pen_mm * canvas.scale))))
    img = canvas.image(_grid_step(canvas.scale), pen_px)
    with atomic_writer(Path(png_out)) as fh:
        img.save(fh, format="PNG", compress_level=3)
    if thumb_out is not None:
        thumb = img.copy()
        thumb.thumbnail((thumb_px, thumb_px), Image.Resampling.LANCZOS)
        with atomic_writer(Path(thumb_out)) as fh:
            thumb.save(fh, format="PNG")
    return PreviewInfo(canvas.w, canvas.h, view)
