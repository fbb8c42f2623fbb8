"""How much G-code an image may make: predicted before converting, checked while writing.

Issue 12, item 9: a 1 MB noise picture at 390 mm wide, 0.05 mm interval and 50 passes made
32 GB of G-code in five minutes before anything stopped it.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from laserd.errors import InsufficientStorage, OutputTooLarge
from laserd.gcode import analyse_gcode
from laserd.gcode.output import OutputLimits, SpaceGuard
from laserd.imaging.laser_settings import LaserSettings
from laserd.imaging.raster import engraving_grid, image_to_gcode, predict_gcode_bytes
from laserd.library.budget import check_image_output
from laserd.library.worker import ProcessRequest, run_processing

BED = (400.0, 400.0)
MAX_S = 1000
GB = 1 << 30


def noise_png(path: Path, w: int, h: int, seed: int = 9) -> Path:
    """Grey noise: the worst picture for raster G-code (power changes at every pixel)."""
    rng = np.random.default_rng(seed)  # fixed: CI is deterministic
    Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(path)
    return path


def unlimited(tmp_path: Path) -> OutputLimits:
    return OutputLimits(max_bytes=1 << 50, reserve_bytes=0, directory=tmp_path)


@pytest.mark.parametrize(
    "laser",
    [
        {},
        {"width_mm": 390, "line_interval_mm": 0.5, "passes": 2},
        {"dither": "floyd_steinberg", "bidirectional": False},
        {"overscan_mm": 0, "dither": "threshold"},
        {"origin_mm": {"x": -100.25, "y": -50}, "passes": 3, "line_interval_mm": 0.013},
        {"air_assist": True, "speed_mm_min": 1234.5, "overscan_mm": 7.77},
    ],
)
def test_prediction_is_an_upper_bound_of_the_real_output(tmp_path: Path, laser: dict) -> None:
    src = noise_png(tmp_path / "noise.png", 300, 200)
    settings = LaserSettings(**laser)
    w, h = engraving_grid(src, settings)
    out = tmp_path / "out.gcode"
    image_to_gcode(src, out, settings, max_power_s=MAX_S, max_megapixels=80, bed_mm=BED)
    actual = out.stat().st_size
    predicted = predict_gcode_bytes(w, h, settings, MAX_S)
    assert predicted >= actual
    if settings.dither == "grayscale":
        assert predicted <= 1.5 * actual, (predicted, actual)  # and not wildly pessimistic


def test_the_grid_is_read_from_the_header_with_exif_rotation(tmp_path: Path) -> None:
    src = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter: 300 wide on disk, 100 wide on screen
    Image.new("L", (300, 100), 128).save(src, exif=exif.tobytes())
    assert engraving_grid(src, LaserSettings()) == (100, 300)
    assert engraving_grid(src, LaserSettings(width_mm=10, line_interval_mm=0.1)) == (100, 300)


def test_the_issue_example_is_refused_from_the_header_in_no_time(tmp_path: Path) -> None:
    """1 MB of noise, 390 mm at 0.05 mm, 50 passes: tens of GB, refused with the numbers."""
    src = noise_png(tmp_path / "noise.png", 1024, 1024)
    assert 0.9e6 < src.stat().st_size < 1.2e6
    laser = LaserSettings(width_mm=390, line_interval_mm=0.05, passes=50)
    assert predict_gcode_bytes(*engraving_grid(src, laser), laser, MAX_S) > 30 * GB
    limits = OutputLimits(max_bytes=2048 << 20, reserve_bytes=0, directory=tmp_path)
    started = time.perf_counter()
    with pytest.raises(OutputTooLarge) as info:
        check_image_output(limits, src, "noise.png", laser, MAX_S)
    assert time.perf_counter() - started < 2.0
    message = info.value.message
    assert "'noise.png'" in message and "7800×7800 pixels × 50 passes" in message
    assert "GB" in message and "2 GB" in message and "max_gcode_mb" in message
    assert info.value.status == 422 and info.value.code == "output_too_large"
    assert info.value.details["predicted_bytes"] > 30 * GB


def test_the_free_space_less_the_reserve_is_a_limit_too(tmp_path: Path) -> None:
    src = noise_png(tmp_path / "noise.png", 200, 200)
    laser = LaserSettings()
    predicted = predict_gcode_bytes(200, 200, laser, MAX_S)
    reserve = 50 << 20

    def disk(free: int) -> OutputLimits:
        return OutputLimits(1 << 40, reserve, tmp_path, free=lambda _p: free)

    check_image_output(disk(reserve + predicted), src, "n.png", laser, MAX_S)  # just fits
    with pytest.raises(OutputTooLarge) as info:
        check_image_output(disk(reserve + predicted - 1), src, "n.png", laser, MAX_S)
    assert "free" in info.value.message and info.value.details["limit"] == "free_space"


def test_the_converter_refuses_before_decoding_and_leaves_nothing(tmp_path: Path) -> None:
    src = noise_png(tmp_path / "noise.png", 400, 400)
    out_dir = tmp_path / "generated"
    out_dir.mkdir()
    limits = OutputLimits(max_bytes=1 << 20, reserve_bytes=0, directory=out_dir)
    laser = LaserSettings(passes=20)
    with pytest.raises(OutputTooLarge, match=r"400×400 pixels × 20 passes"):
        image_to_gcode(
            src, out_dir / "1.gcode", laser, max_power_s=MAX_S, max_megapixels=80,
            bed_mm=BED, limits=limits,
        )  # fmt: skip
    assert list(out_dir.iterdir()) == []


class ShrinkingDisk:
    """A disk with ``total`` bytes: what is written into ``folder`` takes from the free space."""

    def __init__(self, folder: Path, total: int) -> None:
        self.folder, self.total, self.calls = folder, total, 0

    def __call__(self, _path: Path) -> int:
        self.calls += 1
        return self.total - sum(p.stat().st_size for p in self.folder.iterdir())


@pytest.mark.parametrize("passes", [1, 4], ids=["while-converting", "while-repeating-passes"])
def test_the_writer_stops_when_the_disk_fills_up(tmp_path: Path, passes: int) -> None:
    """The prediction passed (the disk had room then), but something else took the space."""
    src = noise_png(tmp_path / "noise.png", 500, 500)
    out_dir = tmp_path / "generated"
    out_dir.mkdir()
    laser = LaserSettings(passes=passes)
    predicted = predict_gcode_bytes(500, 500, laser, MAX_S)
    disk = ShrinkingDisk(out_dir, total=predicted + (1 << 20))
    limits = OutputLimits(
        1 << 40, 1 << 20, out_dir, check_every_bytes=64 << 10, free=disk
    )  # room for all of it at the start: the check before converting passes
    filler = out_dir / "someone-else.bin"

    def progress(fraction: float) -> None:
        if fraction > 0.3 and not filler.exists():  # another writer takes most of the disk
            filler.write_bytes(b"\0" * (predicted // 2))

    with pytest.raises(InsufficientStorage, match="disk filled up while writing the G-code"):
        image_to_gcode(
            src, out_dir / "1.gcode", laser, max_power_s=MAX_S, max_megapixels=80,
            bed_mm=BED, limits=limits, progress=progress,
        )  # fmt: skip
    assert sorted(p.name for p in out_dir.iterdir()) == ["someone-else.bin"]  # partial removed
    assert disk.calls > 2


def test_the_guard_enforces_the_cap_on_any_writer(tmp_path: Path) -> None:
    limits = OutputLimits(max_bytes=1000, reserve_bytes=0, directory=tmp_path)
    fh = io.BytesIO()
    guard = SpaceGuard(fh, limits)
    fh.write(b"x" * 1000)
    guard.check()
    fh.write(b"x")
    with pytest.raises(OutputTooLarge):
        guard.check()


def test_gcode_analysis_stops_when_the_disk_fills_up(tmp_path: Path) -> None:
    src = tmp_path / "in.gcode"
    src.write_bytes(b"G21\nG90\nM4 S500\n" + b"G1 X10.123 Y20.456 F1000\nG1 X0 Y0\n" * 60_000)
    out_dir = tmp_path / "generated"
    out_dir.mkdir()
    disk = ShrinkingDisk(out_dir, total=(1 << 20) + 300_000)
    limits = OutputLimits(1 << 40, 1 << 20, out_dir, check_every_bytes=64 << 10, free=disk)
    with pytest.raises(InsufficientStorage):
        analyse_gcode(src, out_dir / "1.gcode", bed_mm=BED, max_power_s=MAX_S, limits=limits)
    assert list(out_dir.iterdir()) == []


def test_the_worker_fails_the_file_with_the_number(tmp_path: Path) -> None:
    """A file queued without the up-front check (left over from a crash, a lowered cap)."""
    src = noise_png(tmp_path / "noise.png", 1024, 1024)
    gen = tmp_path / "generated"
    gen.mkdir()
    laser = LaserSettings(width_mm=390, line_interval_mm=0.05, passes=50)
    req = ProcessRequest(
        file_id=1, kind="image", src=str(src), gcode_out=str(gen / "1.gcode"),
        preview_out=str(gen / "1.png"), thumb_out=str(gen / "1.thumb.png"),
        laser=laser.model_dump(mode="json"), bed_mm=BED, max_power_s=MAX_S,
        max_megapixels=80, rapid_mm_min=6000, max_output_bytes=2048 << 20, reserve_bytes=0,
    )  # fmt: skip
    started = time.perf_counter()
    result = run_processing(req)
    assert not result.ok
    assert time.perf_counter() - started < 5.0  # refused before decoding 60 MP
    assert "would make up to" in (result.error or "") and "GB" in (result.error or "")
    assert "max_gcode_mb" in (result.error or "")
    assert list(gen.iterdir()) == []
