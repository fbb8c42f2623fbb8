"""Toolpath previews: where burns and travel land, tones, views, thumbnails, atomic output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from laserd.imaging.laser_settings import LaserSettings
from laserd.imaging.preview import BACKGROUND, BURN, TRAVEL, render_preview
from laserd.imaging.raster import image_to_gcode


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB")).astype(int)


def _near(pixel: np.ndarray, colour: np.ndarray, tol: int = 3) -> bool:
    return bool(np.abs(pixel - colour).max() <= tol)


def test_burns_dark_by_power_travel_faint_rest_background(tmp_path: Path) -> None:
    src = tmp_path / "v.gcode"
    src.write_text(
        "G21G90\nG0X10Y10\nM4S1000\nG1X100F1000\n"  # full power along y = 10
        "G0X100Y200\n"  # travel up
        "S250\nG1X300\n"  # quarter power along y = 200
        "M5\n"
    )
    out = tmp_path / "p.png"
    info = render_preview(src, out, bed_mm=(400, 300), size_px=401)
    img = _png(out)
    assert img.shape == (301, 401, 3) == (info.height_px, info.width_px, 3)
    row = lambda y_mm: 300 - y_mm  # noqa: E731  (row 0 is the top of the bed)
    full = img[row(10), 50]
    quarter = img[row(200), 200]
    assert _near(full, BURN, 2)
    assert quarter.sum() > full.sum() + 100  # lighter
    assert quarter.sum() < BACKGROUND.sum() - 100  # but visibly burnt
    assert _near(img[row(100), 100], TRAVEL)
    assert _near(img[row(150), 350], BACKGROUND, 30)  # nothing there (maybe a grid line)


def test_job_view_frames_the_bounds_and_thumbnail(tmp_path: Path) -> None:
    src = tmp_path / "v.gcode"
    src.write_text("G0X100Y100\nM3S500\nG1X120Y110F600\nM5\n")
    out, thumb = tmp_path / "p.png", tmp_path / "t.png"
    bounds = {"xmin": 100.0, "xmax": 120.0, "ymin": 100.0, "ymax": 110.0}
    info = render_preview(
        src, out, bed_mm=(400, 400), size_px=500, bounds_mm=bounds, thumb_out=thumb, thumb_px=64
    )
    assert info.width_px == 500 and info.height_px < 300
    xmin, xmax, ymin, ymax = info.view_mm
    assert xmin < 100 < 120 < xmax and ymin < 100 < 110 < ymax
    img = _png(out)
    burnt = (np.abs(img - BURN).sum(axis=2) < np.abs(img - BACKGROUND).sum(axis=2)).sum()
    assert burnt > 400  # the 22 mm diagonal spans most of the picture
    with Image.open(thumb) as t:
        assert max(t.size) == 64


def test_raster_preview_shows_tones_not_just_black(tmp_path: Path) -> None:
    gradient = np.tile(np.linspace(0, 255, 200, dtype=np.uint8), (100, 1))
    src = tmp_path / "g.png"
    Image.fromarray(gradient).save(src)
    gcode = tmp_path / "g.gcode"
    laser = LaserSettings(dither="floyd_steinberg", line_interval_mm=0.1, overscan_mm=0)
    image_to_gcode(src, gcode, laser, max_power_s=1000, max_megapixels=10, bed_mm=(40, 40))
    out = tmp_path / "g_preview.png"
    render_preview(gcode, out, bed_mm=(20, 10), size_px=200)
    img = _png(out).sum(axis=2)
    mid = img[30:70]
    dark_end, middle, light_end = mid[:, 5:20].mean(), mid[:, 90:110].mean(), mid[:, 175:190].mean()
    assert dark_end < middle < light_end
    assert middle - dark_end > 100 and light_end - middle > 100


def test_output_replaced_atomically(tmp_path: Path) -> None:
    src = tmp_path / "v.gcode"
    src.write_text("M4S100\nG1X5Y5F100\n")
    out = tmp_path / "p.png"
    out.write_bytes(b"old")
    render_preview(src, out, bed_mm=(10, 10), size_px=50)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png", "v.gcode"]


def test_many_segments_and_a_long_move_stay_bounded(tmp_path: Path) -> None:
    src = tmp_path / "many.gcode"
    rows = []
    for r in range(400):
        rows.append(f"G0X0Y{r * 0.1:.1f}\nG1F3000\n")
        rows.append("".join(f"X{c * 0.1:.1f}S{(c * 37) % 1000}\n" for c in range(1, 500)))
    src.write_text("M4\n" + "".join(rows) + "G0X400Y400\nM5\n")
    out = tmp_path / "m.png"
    info = render_preview(src, out, bed_mm=(400, 400), size_px=1024)
    img = _png(out)
    assert img.shape[:2] == (info.height_px, info.width_px)
    # The raster patch in the lower-left corner is burnt; the corner far from it is not.
    assert img[-10:, :100].sum() < img[:10, -100:].sum()


def test_sparse_and_dense_accumulation_give_the_same_sums() -> None:
    """The preview adds a small batch (one of a many-layer design's) to its own pixels only;
    the numbers must be exactly those of a canvas-sized bincount."""
    import numpy as np

    from laserd.imaging.preview import _accumulate

    rng = np.random.default_rng(15)
    for n in (10, 1000, 200_000):  # sparse, sparse, dense (against a 100 000-pixel canvas)
        idx = rng.integers(0, 100_000, n)
        weights = rng.random(n)
        base = rng.random(100_000)
        expected = base + np.bincount(idx, weights=weights, minlength=100_000)
        got = base.copy()
        _accumulate(got, idx, weights)
        assert np.array_equal(got, expected), n
        column = np.stack([base, base], axis=1)  # a strided view, as the tint channels are
        _accumulate(column[:, 1], idx, weights)
        assert np.array_equal(column[:, 1], expected) and np.array_equal(column[:, 0], base)
