"""Image → raster G-code: round trip through an independent interpreter, loading, dithering."""

from __future__ import annotations

import io
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from laserd.gcode import analyse_gcode
from laserd.imaging.dither import KERNELS, ErrorDiffuser, diffuse_reference, ordered
from laserd.imaging.laser_settings import Dither, LaserSettings
from laserd.imaging.raster import ImageError, image_to_gcode, power_map, power_s
from tests.samples import SAMPLE_DATA

SAMPLES = SAMPLE_DATA
BED = (400.0, 400.0)
MAX_S = 1000
_WORD = re.compile(r"([A-Z])(-?[0-9]*\.?[0-9]*)")


# --------------------------------------------------------------------------- test helpers


def _on_bed(x: float, anchor: float) -> float:
    """Where an overscan end lands: on the bed (BED), never past the engraved span."""
    return min(max(x, min(0.0, anchor)), max(BED[0], anchor))


def render(
    gcode: bytes, shape: tuple[int, int], dx: float, origin: tuple[float, float], ovs: float
) -> tuple[np.ndarray, dict[str, int]]:
    """Replay raster G-code into a power map [H, W] (row 0 at the top), checking as it goes.

    Independent of laserd's own parser on purpose: a tiny interpreter of just what a raster
    file may contain, which also enforces the writer's promises (no spaces, trimmed decimals,
    only changed words, horizontal burns inside the image, overscan at both row ends).
    """
    h, w = shape
    ox, oy = origin
    power = np.zeros(shape, dtype=np.int64)
    hits = np.zeros(shape, dtype=np.int64)
    x = y = 0.0
    s: float | None = None
    feed: float | None = None
    motion = None
    on = False
    g0_x: float | None = None
    row_dir = 0.0
    last_burn_end: float | None = None
    counts = {"reversed_rows": 0, "forward_rows": 0, "lines": 0}
    for line in gcode.decode("ascii").split("\n")[:-1]:
        counts["lines"] += 1
        assert line and " " not in line, line
        assert not re.search(r"\.[0-9]*0(?![0-9])|\.(?![0-9])", line), f"untrimmed: {line}"
        words = _WORD.findall(line)
        assert "".join(a + b for a, b in words) == line, line
        vals: dict[str, float] = {}
        for letter, num in words:
            v = float(num)
            if letter == "G":
                motion = int(v) if int(v) in (0, 1) else motion
            elif letter == "M":
                on = int(v) in (3, 4) or (on and int(v) not in (5, 2, 30))
            else:
                vals[letter] = v
        if "S" in vals:
            assert vals["S"] != s, f"unchanged S written: {line}"
            s = vals["S"]
        if "F" in vals:
            assert vals["F"] != feed, f"unchanged F written: {line}"
            feed = vals["F"]
        nx, ny = vals.get("X", x), vals.get("Y", y)
        if "X" in vals:
            assert vals["X"] != x or "Y" in vals, f"unchanged X written: {line}"
        if "Y" in vals:
            assert vals["Y"] != y, f"unchanged Y written: {line}"
        if "X" not in vals and "Y" not in vals:
            continue
        if motion == 0:
            g0_x = nx
            if last_burn_end is not None and ovs > 0:
                want = _on_bed(last_burn_end + row_dir * ovs, last_burn_end)
                assert x == pytest.approx(want), "missing run-out"
            last_burn_end = None
        elif motion == 1 and on and s:
            assert feed is not None
            assert ny == y, "raster burns are horizontal"
            row = h - 1 - round((y - oy) / dx)
            c0 = round((min(x, nx) - ox) / dx)
            c1 = round((max(x, nx) - ox) / dx)
            assert 0 <= row < h and 0 <= c0 < c1 <= w, (line, row, c0, c1)
            power[row, c0:c1] = s
            hits[row, c0:c1] += 1
            direction = 1.0 if nx > x else -1.0
            if g0_x is not None:  # first burn of a row
                assert g0_x == pytest.approx(_on_bed(x - direction * ovs, x)), "wrong run-in"
                counts["forward_rows" if direction > 0 else "reversed_rows"] += 1
                g0_x = None
                row_dir = direction
            else:
                assert direction == row_dir
            last_burn_end = nx
        x, y = nx, ny
    assert hits.max(initial=0) <= 1, "a pixel was burnt twice"
    assert not on or s == 0
    return power, counts


def make_test_image(path: Path) -> None:
    """Gradients, flat areas, blank rows and margins, an interior gap and noise: every case."""
    h, w = 40, 64
    img = np.full((h, w), 255, dtype=np.uint8)
    img[3:12, 5:60] = np.linspace(0, 255, 55, dtype=np.uint8)[None, :]
    img[15:25, 10:30] = 40
    img[15:25, 40:55] = 200
    rng = np.random.default_rng(7)
    img[28:37, 2:62] = rng.integers(0, 256, (9, 60), dtype=np.uint8)
    img[39, 63] = 0  # a lone pixel in the last corner
    Image.fromarray(img, "L").save(path)


def convert(tmp_path: Path, src: Path, laser: LaserSettings, **kw: object):
    out = tmp_path / "out.gcode"
    report = image_to_gcode(
        src, out, laser, max_power_s=MAX_S, max_megapixels=kw.pop("mp", 50), bed_mm=BED, **kw
    )  # type: ignore[arg-type]
    return report, out.read_bytes()


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("mode", list(Dither))
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("overscan", [0.0, 1.5])
def test_round_trip_every_mode_direction_and_overscan(
    tmp_path: Path, mode: Dither, bidirectional: bool, overscan: float
) -> None:
    src = tmp_path / "test.png"
    make_test_image(src)
    laser = LaserSettings(
        dither=mode,
        bidirectional=bidirectional,
        overscan_mm=overscan,
        line_interval_mm=0.25,
        origin_mm={"x": 3, "y": 4},
        power_min_pct=10,
        power_max_pct=80,
    )
    intended = power_map(src, laser, max_power_s=MAX_S, max_megapixels=50)
    assert intended.shape == (40, 64)
    assert intended.any() and (intended == 0).any()
    report, gcode = convert(tmp_path, src, laser)
    got, counts = render(gcode, intended.shape, 0.25, (3, 4), overscan)
    np.testing.assert_array_equal(got, intended)
    assert counts["lines"] == report.stats["lines"]
    if bidirectional:
        assert counts["reversed_rows"] > 0
        assert abs(counts["reversed_rows"] - counts["forward_rows"]) <= 1
    else:
        assert counts["reversed_rows"] == 0
    engraved_rows = int(intended.any(axis=1).sum())
    assert counts["forward_rows"] + counts["reversed_rows"] == engraved_rows
    assert gcode.endswith(b"M5\n")
    assert intended.max() == power_s(80, MAX_S)


@pytest.mark.parametrize("mode", ["grayscale", "floyd_steinberg"])
def test_round_trip_on_a_resampled_sample_image(tmp_path: Path, mode: str) -> None:
    laser = LaserSettings(dither=mode, width_mm=30, line_interval_mm=0.2, overscan_mm=1)
    intended = power_map(SAMPLES / "horse.png", laser, max_power_s=MAX_S, max_megapixels=50)
    assert intended.shape[1] == 150
    _, gcode = convert(tmp_path, SAMPLES / "horse.png", laser)
    got, _ = render(gcode, intended.shape, 0.2, (0, 0), 1.0)
    np.testing.assert_array_equal(got, intended)


def test_stats_agree_with_the_analyser_including_passes(tmp_path: Path) -> None:
    src = tmp_path / "test.png"
    make_test_image(src)
    one = LaserSettings(line_interval_mm=0.5, origin_mm={"x": 10, "y": 10})
    three = one.model_copy(update={"passes": 3, "air_assist": True})
    r1, g1 = convert(tmp_path, src, one)
    r3, g3 = convert(tmp_path, src, three)
    assert r3.stats["laser_on_mm"] == pytest.approx(3 * r1.stats["laser_on_mm"])
    assert g3.startswith(b"G21G90\nM8\nM4\n") and g3.endswith(b"M5\nM9\n")
    body = g1[len(b"G21G90\nM4\n") : -len(b"M5\n")]
    assert g3.count(body) == 3
    out = tmp_path / "norm.gcode"
    (tmp_path / "three.gcode").write_bytes(g3)
    report = analyse_gcode(
        tmp_path / "three.gcode", out, bed_mm=BED, max_power_s=MAX_S, rapid_mm_min=6000
    )
    for key in ("laser_on_mm", "travel_mm", "estimated_s"):
        assert report.stats[key] == pytest.approx(r3.stats[key], rel=1e-6), key
    assert report.stats["bounds"] == pytest.approx(r3.stats["bounds"])
    assert report.stats["laser_bounds"] == pytest.approx(r3.stats["laser_bounds"])
    lb, b = r3.stats["laser_bounds"], r3.stats["bounds"]
    assert lb["xmin"] == pytest.approx(b["xmin"] + 2) and lb["xmax"] == pytest.approx(b["xmax"] - 2)
    assert report.stats["lines"] == r3.stats["lines"]


def test_m3_power_scaling_and_levels(tmp_path: Path) -> None:
    src = tmp_path / "test.png"
    make_test_image(src)
    laser = LaserSettings(mode="M3", power_max_pct=50, power_levels=4, line_interval_mm=0.5)
    out = tmp_path / "o.gcode"
    image_to_gcode(src, out, laser, max_power_s=255, max_megapixels=50, bed_mm=BED)
    text = out.read_text()
    assert "M3\n" in text and "M4" not in text
    s_values = {int(v) for v in re.findall(r"S([0-9]+)", text)}
    assert max(s_values) == power_s(50, 255)
    assert len(s_values - {0}) <= 3


def test_blank_rows_and_margins_produce_no_code(tmp_path: Path) -> None:
    img = np.full((30, 50), 255, dtype=np.uint8)
    img[10, 20:25] = 0
    src = tmp_path / "dot.png"
    Image.fromarray(img).save(src)
    laser = LaserSettings(line_interval_mm=1, overscan_mm=0)
    report, gcode = convert(tmp_path, src, laser)
    assert gcode == b"G21G90\nM4\nG0X20Y19\nG1F3000X25S1000\nM5\n"
    assert report.stats["bounds"] == {"xmin": 20, "xmax": 25, "ymin": 19, "ymax": 19}
    assert report.stats["laser_bounds"] == report.stats["bounds"]
    assert report.stats["laser_on_mm"] == 5


def test_white_image_warns_nothing_to_engrave(tmp_path: Path) -> None:
    src = tmp_path / "white.png"
    Image.new("L", (20, 20), 255).save(src)
    report, gcode = convert(tmp_path, src, LaserSettings())
    assert gcode == b"G21G90\nM4\nM5\n"
    assert any("nothing to engrave" in w for w in report.warnings)


def test_invert_burns_the_light_parts(tmp_path: Path) -> None:
    src = tmp_path / "test.png"
    make_test_image(src)
    normal = power_map(src, LaserSettings(dither="threshold"), max_power_s=MAX_S, max_megapixels=9)
    inverted = power_map(
        src, LaserSettings(dither="threshold", invert=True), max_power_s=MAX_S, max_megapixels=9
    )
    np.testing.assert_array_equal(normal > 0, inverted == 0)


def test_brightness_contrast_gamma_change_the_burn(tmp_path: Path) -> None:
    src = tmp_path / "test.png"
    make_test_image(src)

    def burnt(**kw: float) -> int:
        m = power_map(src, LaserSettings(**kw), max_power_s=MAX_S, max_megapixels=9)
        return int(m.sum())

    base = burnt()
    assert burnt(brightness=30) < base < burnt(brightness=-30)
    assert burnt(gamma=2.0) < base < burnt(gamma=0.5)
    assert burnt(contrast=-100) != base


def test_progress_reaches_one(tmp_path: Path) -> None:
    seen: list[float] = []
    convert(tmp_path, SAMPLES / "horse.png", LaserSettings(width_mm=20), progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0


# --------------------------------------------------------------------------- loading


def test_width_alone_keeps_the_aspect_ratio(tmp_path: Path) -> None:
    src = tmp_path / "wide.png"
    Image.new("L", (200, 100), 0).save(src)
    report, _ = convert(tmp_path, src, LaserSettings(width_mm=40, line_interval_mm=0.2))
    assert (report.width_px, report.height_px) == (200, 100)
    report, _ = convert(tmp_path, src, LaserSettings(height_mm=10, line_interval_mm=0.1))
    assert (report.width_px, report.height_px) == (200, 100)
    report, _ = convert(tmp_path, src, LaserSettings(width_mm=10, line_interval_mm=0.1))
    assert (report.width_px, report.height_px) == (100, 50)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [20_000, 100_000])
def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path, side: int) -> None:
    src = tmp_path / "bomb.png"
    src.write_bytes(_png_header_only(side, side))
    with pytest.raises(ImageError) as info:
        convert(tmp_path, src, LaserSettings(), mp=80)
    assert "too large" in info.value.message
    assert not (tmp_path / "out.gcode").exists()


def test_output_grid_limit(tmp_path: Path) -> None:
    src = tmp_path / "small.png"
    Image.new("L", (10, 10), 0).save(src)
    with pytest.raises(ImageError) as info:
        convert(tmp_path, src, LaserSettings(width_mm=1000, line_interval_mm=0.01), mp=80)
    assert info.value.code == "image_too_large"


def test_truncated_png_gives_a_clear_error(tmp_path: Path) -> None:
    data = (SAMPLES / "camera.png").read_bytes()
    src = tmp_path / "cut.png"
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as info:
        convert(tmp_path, src, LaserSettings())
    assert "truncated" in info.value.message
    assert info.value.status == 422
    assert [p.name for p in tmp_path.iterdir()] == ["cut.png"]


def test_not_an_image(tmp_path: Path) -> None:
    src = tmp_path / "x.png"
    src.write_bytes(b"G0 X1\n")
    with pytest.raises(ImageError):
        convert(tmp_path, src, LaserSettings())


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = Image.new("L", (40, 20), 255)
    img.paste(0, (0, 0, 10, 20))  # black band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=95)
    src = tmp_path / "rot.jpg"
    src.write_bytes(buf.getvalue())
    laser = LaserSettings(dither="threshold", line_interval_mm=1)
    m = power_map(src, laser, max_power_s=MAX_S, max_megapixels=9)
    assert m.shape == (40, 20)
    assert m[:10].mean() > 0.9 * MAX_S and m[-10:].mean() < 0.1 * MAX_S


def test_transparency_is_white(tmp_path: Path) -> None:
    rgba = np.zeros((10, 10, 4), dtype=np.uint8)  # black, fully transparent
    rgba[:5, :, 3] = 255  # top half opaque black
    src = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(src)
    m = power_map(src, LaserSettings(dither="threshold"), max_power_s=MAX_S, max_megapixels=9)
    assert m[:5].all() and not m[5:].any()


def test_gif_first_frame_and_16_bit_png(tmp_path: Path) -> None:
    frames = [Image.new("L", (8, 8), 0), Image.new("L", (8, 8), 255)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    m = power_map(gif, LaserSettings(dither="threshold"), max_power_s=MAX_S, max_megapixels=9)
    assert m.all()
    deep = np.full((6, 6), 65535, dtype=np.uint16)
    deep[:3] = 0
    png16 = tmp_path / "deep.png"
    Image.fromarray(deep).save(png16)
    m = power_map(png16, LaserSettings(dither="threshold"), max_power_s=MAX_S, max_megapixels=9)
    assert m[:3].all() and not m[3:].any()


# --------------------------------------------------------------------------- dithering


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("band", [1, 7, 64])
def test_wavefront_diffusion_equals_the_reference(kernel: str, band: int) -> None:
    rng = np.random.default_rng(3)
    img = rng.random((45, 37)).astype(np.float32)
    ref = diffuse_reference(img, kernel)
    diffuser = ErrorDiffuser(kernel, img.shape[1])
    got = np.vstack([diffuser.process(img[r : r + band]) for r in range(0, img.shape[0], band)])
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("level", [0.1, 0.5, 0.77])
def test_dithers_keep_the_average_darkness(level: float) -> None:
    flat = np.full((64, 64), level, dtype=np.float32)
    assert ordered(flat, 0).mean() == pytest.approx(level, abs=1 / 64 + 1e-6)
    for kernel in ("jarvis", "stucki", "sierra"):
        out = ErrorDiffuser(kernel, 64).process(flat)
        assert out.mean() == pytest.approx(level, abs=0.02), kernel


@pytest.mark.parametrize("mode", ["grayscale", "jarvis", "floyd_steinberg", "ordered"])
@pytest.mark.parametrize("overscan", [0.0, 1.0])
def test_round_trip_across_many_small_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, overscan: float
) -> None:
    """Chunk borders: direction parity, carried S state and diffusion errors continue."""
    import laserd.imaging.raster

    monkeypatch.setattr(laserd.imaging.raster, "CHUNK_PIXELS", 64 * 3)  # three rows per chunk
    src = tmp_path / "test.png"
    make_test_image(src)
    laser = LaserSettings(dither=mode, overscan_mm=overscan, line_interval_mm=0.5)
    small = power_map(src, laser, max_power_s=MAX_S, max_megapixels=9)
    _, gcode = convert(tmp_path, src, laser)
    got, counts = render(gcode, small.shape, 0.5, (0, 0), overscan)
    np.testing.assert_array_equal(got, small)
    assert abs(counts["reversed_rows"] - counts["forward_rows"]) <= 1
    monkeypatch.setattr(laserd.imaging.raster, "CHUNK_PIXELS", 1 << 16)
    whole = power_map(src, laser, max_power_s=MAX_S, max_megapixels=9)
    np.testing.assert_array_equal(small, whole)


def test_overscan_stays_on_the_bed_for_an_image_at_the_origin(tmp_path: Path) -> None:
    from PIL import Image

    src = tmp_path / "black.png"
    Image.new("L", (20, 4), 0).save(src)
    out = tmp_path / "o.gcode"
    laser = LaserSettings(width_mm=2.0, overscan_mm=3.0, line_interval_mm=0.1)
    report = image_to_gcode(src, out, laser, max_power_s=MAX_S, max_megapixels=50, bed_mm=BED)
    xs = [float(m) for m in re.findall(r"X(-?[0-9.]+)", out.read_text())]
    assert min(xs) >= 0.0
    assert report.stats["bounds"]["xmin"] >= 0.0
    assert not any("leaves the bed" in w for w in report.warnings)
