"""G-code analysis: GRBL 1.1 dialect checks, statistics, normalised output, fast = slow path."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from laserd.gcode import MAX_ISSUES, GcodeError, ProgramReader, analyse_gcode
from laserd.gcode.errors import LineError
from laserd.gcode.fast import FastResult, fast_chunk
from laserd.gcode.interp import Interpreter, ModalState
from laserd.gcode.lexer import lex_line
from laserd.gcode.segments import MotionStats
from laserd.imaging.laser_settings import LaserSettings
from laserd.imaging.raster import image_to_gcode
from tests.samples import SAMPLE_DATA

SAMPLES = SAMPLE_DATA
BED = (400.0, 400.0)


def run(tmp_path: Path, text: bytes | str, **kw: object):
    src = tmp_path / "in.gcode"
    src.write_bytes(text.encode() if isinstance(text, str) else text)
    out = tmp_path / "out.gcode"
    kw.setdefault("bed_mm", BED)
    kw.setdefault("max_power_s", 1000)
    report = analyse_gcode(src, out, **kw)  # type: ignore[arg-type]
    return report, out.read_bytes()


def refused(tmp_path: Path, text: bytes | str) -> GcodeError:
    with pytest.raises(GcodeError) as info:
        run(tmp_path, text)
    assert not (tmp_path / "out.gcode").exists()
    return info.value


def test_hand_written_file_stats_and_normalised_copy(tmp_path: Path) -> None:
    text = (
        "; made by hand\n"
        "G21 G90 (millimetres, absolute)\n"
        "\n"
        "G0 X10 Y10\n"
        "m4 s500\n"
        "G1 X20 F600   ; 10 mm at 600 mm/min = 1 s\n"
        "G1 Y20\n"
        "G0 X0 Y0\n"
        "G4 P2.5\n"
        "M5\n"
    )
    report, out = run(tmp_path, text, rapid_mm_min=6000.0)
    assert out == b"G21G90\nG0X10Y10\nM4S500\nG1X20F600\nG1Y20\nG0X0Y0\nG4P2.5\nM5\n"
    stats = report.stats
    assert stats["lines"] == 8
    assert stats["bounds"] == {"xmin": 0.0, "xmax": 20.0, "ymin": 0.0, "ymax": 20.0}
    assert stats["laser_bounds"] == {"xmin": 10.0, "xmax": 20.0, "ymin": 10.0, "ymax": 20.0}
    assert stats["laser_on_mm"] == pytest.approx(20.0)
    travel = math.hypot(10, 10) + math.hypot(20, 20)
    assert stats["travel_mm"] == pytest.approx(travel, abs=1e-3)
    naive_s = 20.0 / 600 * 60 + travel / 6000 * 60 + 2.5
    # GRBL's planner: the corner at (20,10), the rapids' ramps and the stops at the dwell and
    # the M4/M5 changes add a little to distance over feed
    assert naive_s < stats["estimated_s"] < naive_s + 0.3
    assert stats["estimate_settings"]["110"] == 6000.0
    assert report.warnings == []


def test_arcs_count_their_length_and_their_bulge(tmp_path: Path) -> None:
    # A clockwise half circle from (0,0) to (20,0) around (10,0) passes over (10,10).
    report, _ = run(tmp_path, "G0X0Y0\nM3S100\nG2X20Y0I10J0F1000\nM5\n")
    assert report.stats["laser_on_mm"] == pytest.approx(math.pi * 10, rel=1e-3)
    bounds = report.stats["bounds"]
    assert bounds["ymax"] == pytest.approx(10.0, abs=1e-6)
    assert bounds["ymin"] == pytest.approx(0.0, abs=1e-6)
    # The same arc in radius form, counter-clockwise: below the axis.
    report, _ = run(tmp_path, "G0X0Y0\nM3S100\nG3X20Y0R10F1000\nM5\n")
    assert report.stats["bounds"]["ymin"] == pytest.approx(-10.0, abs=1e-6)


def test_inches_and_relative_moves(tmp_path: Path) -> None:
    report, out = run(tmp_path, "G20 G91\nM4 S200\nG1 X1 Y0 F10\nG1 X1\nG90 G21\nG0 X0\nM5\n")
    assert report.stats["laser_on_mm"] == pytest.approx(50.8)
    assert report.stats["bounds"]["xmax"] == pytest.approx(50.8)
    assert report.stats["estimated_s"] > 50.8 / 254 * 60 - 0.01
    assert out.startswith(b"G20G91\n")


def test_line_endings_crlf_and_lone_cr(tmp_path: Path) -> None:
    _, out = run(tmp_path, b"G0X1\r\nG0X2\rG0X3\r\n")
    assert out == b"G0X1\nG0X2\nG0X3\n"


def test_non_utf8_inside_comments_is_dropped(tmp_path: Path) -> None:
    report, out = run(tmp_path, b"(caf\xe9 \xff\xfe ! ~ ?)\nG0X1 ; \x80\x84 \x18\nM5\n")
    assert out == b"G0X1\nM5\n"
    assert report.stats["lines"] == 2


def test_non_utf8_outside_a_comment_is_refused_with_its_line(tmp_path: Path) -> None:
    err = refused(tmp_path, b"G0X1\nG0X2\xe9\nG0X3\n")
    assert err.issues[0]["line"] == 2
    assert "0xE9" in err.issues[0]["message"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("G1 X1 F100 !", "real-time character '!'"),
        ("G1 X1 F100 ~", "real-time character '~'"),
        ("?", "real-time character '?'"),
        ("G1 X1.2.3 F100", "malformed number"),
        ("G1 X- F100", "malformed number"),
        ("G1 X F100", "has no value"),
        ("G1 E5 F100", "unsupported word 'E5'"),
        ("G1 A5 F100", "no A axis"),
        ("G92 X0 Y0", "G92"),
        ("G28", "G28"),
        ("G53 G0 X0", "G53"),
        ("G38.2 X1 F10", "probing"),
        ("G10 L2 P1 X0", "G10"),
        ("G7", "not supported"),
        ("M0", "M0"),
        ("M6", "not supported"),
        ("$X", "'$X' is not allowed"),
        ("$$", "not allowed"),
        ("$32=0", "not allowed"),
        ("$J=G91 X10 F1000", "jogging"),
        ("G0 G1 X1 F10", "motion group"),
        ("G1 X1 X2 F10", "repeated X"),
        ("M3 M4", "spindle group"),
        ("G1 X1", "feed rate undefined"),
        ("G1 X1 F-5", "negative feed"),
        ("M3 S-1", "negative laser power"),
        ("G4", "needs a P"),
        ("G0 X1 P1", "P word without G4"),
        ("G0 X1 I5", "I word without an arc"),
        ("G2 X10 Y0 F100", "I/J offsets or R"),
        ("G2 X10 Y0 I3 J0 F100", "not on its circle"),
        ("G80 X1", "G80"),
        ("/G0 X1", "block delete"),
        ("G0 X1 #1", "unexpected character '#'"),
        ("12 G0 X1", "command letter"),
        ("G0X1.000000000Y2.000000000Z3.000000000F1000.0000000S1000.000000000M3G17G21G90G94", "79"),
    ],
)
def test_each_refusal_names_its_line(tmp_path: Path, line: str, message: str) -> None:
    err = refused(tmp_path, f"G21\n; ok so far\n{line}\nG0 X0\n")
    assert err.issues[0]["line"] == 3, err.issues
    assert message in err.issues[0]["message"]
    assert err.status == 422 and err.code == "invalid_gcode"
    assert err.details == err.issues


def test_allowed_homing_and_percent_lines(tmp_path: Path) -> None:
    report, out = run(tmp_path, "%\n$H\nG0 X1\n%\n")
    assert out == b"$H\nG0X1\n"
    assert any("homes" in w for w in report.warnings)


def test_line_numbers_are_dropped_and_length_counts_after_normalising(tmp_path: Path) -> None:
    padded = "N10 G1 X1 F100 " + "(" + "x" * 200 + ")" + "   ; more comment\n"
    _, out = run(tmp_path, padded + "M5\n")
    assert out == b"G1X1F100\nM5\n"


def test_issues_are_collected_then_stop(tmp_path: Path) -> None:
    text = "".join(f"G0 X{i}\nG1 E{i}\n" for i in range(200))
    err = refused(tmp_path, text)
    assert len(err.issues) == MAX_ISSUES
    assert err.truncated
    assert [i["line"] for i in err.issues[:3]] == [2, 4, 6]
    assert "more" in err.message


def test_one_megabyte_single_line_is_refused(tmp_path: Path) -> None:
    err = refused(tmp_path, b"G0X1\n" + b"G1X1" * (1 << 18) + b"\nG0X2\n")
    assert err.issues[0]["line"] == 2
    assert "longer than" in err.issues[0]["message"]
    assert len(err.issues) == 1


def test_one_megabyte_comment_line_is_fine(tmp_path: Path) -> None:
    _, out = run(tmp_path, b"G0X1 (" + b"a" * 40_000 + b")\nG0X2\n")
    assert out == b"G0X1\nG0X2\n"


def test_empty_file_is_refused(tmp_path: Path) -> None:
    err = refused(tmp_path, "; only a comment\n\n")
    assert "no G-code" in err.issues[0]["message"]


def test_refusal_leaves_an_existing_output_untouched(tmp_path: Path) -> None:
    (tmp_path / "out.gcode").write_bytes(b"old")
    with pytest.raises(GcodeError):
        run(tmp_path, "G0 X1 !\n")
    assert (tmp_path / "out.gcode").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_warnings_bed_power_and_laser_left_on(tmp_path: Path) -> None:
    report, _ = run(tmp_path, "M4 S1500\nG1 X450 Y-3 F1000\n", bed_mm=(400, 300))
    text = " ".join(report.warnings)
    assert "leaves the bed in X" in text and "leaves the bed in Y" in text
    assert "exceed the controller's maximum" in text
    assert "laser enabled" in text


def test_progress_is_reported_up_to_one(tmp_path: Path) -> None:
    seen: list[float] = []
    run(tmp_path, "G0 X1\n" * 500_000, progress=seen.append)
    assert seen and seen[-1] == pytest.approx(1.0)
    assert seen == sorted(seen)
    assert len(seen) < 50


def _both_paths(path: Path) -> tuple[tuple[bytes, dict], tuple[bytes, dict]]:
    results = []
    for fast in (True, False):
        reader = ProgramReader(path, use_fast_path=fast)
        stats = MotionStats()
        text = []
        for chunk in reader.chunks():
            text.append(chunk.text)
            stats.lines += chunk.lines
            stats.add(chunk.segments)
            stats.add_time(chunk.extra_s)
        assert reader.issues == []
        results.append((b"".join(text), stats.as_dict()))
    return results[0], results[1]


def test_fast_path_agrees_with_reference_on_plain_code(tmp_path: Path) -> None:
    lines = ["G21G90", "M4S0", "G0X1.5Y2", "g1 x3 s250 f1200", "X-4.25S0", "", "G0X0Y0",
             "M3", "G1X.5Y-.5S999", "Y7", "M5", "G0 X10", "G1 F300", "X11 S1", "M4 S2",
             "G54 G17 G94 G40 G49 G61 M8", "X12", "M9", "X13 (comment ! ~ \u00e9)",
             "; note"]  # fmt: skip
    path = tmp_path / "plain.gcode"
    path.write_text("\n".join(lines * 3000) + "\n")
    # The fast path really takes such code (else this test would compare the slow path twice).
    plain = ("\n".join(lines[1:]) + "\n").encode()
    assert fast_chunk(plain, ModalState(feed_mm_min=100), 5000.0) is not None
    assert fast_chunk(b"G2X1Y1I1F10\n", ModalState(feed_mm_min=100), 5000.0) is None
    (fast_text, fast_stats), (slow_text, slow_stats) = _both_paths(path)
    assert fast_text == slow_text
    assert fast_stats == slow_stats
    assert fast_stats["laser_on_mm"] > 0


@pytest.mark.parametrize("name", ["horse.png", "camera.png", "coffee.png", "astronaut.png"])
def test_analysis_of_sample_image_output_matches_the_converter(tmp_path: Path, name: str) -> None:
    laser = LaserSettings(
        width_mm=40, line_interval_mm=0.2, origin_mm={"x": 5, "y": 5}, dither="jarvis"
    )
    gcode = tmp_path / "img.gcode"
    raster = image_to_gcode(
        SAMPLES / name, gcode, laser, max_power_s=1000, max_megapixels=50, bed_mm=BED
    )
    out = tmp_path / "norm.gcode"
    report = analyse_gcode(
        gcode, out, bed_mm=BED, max_power_s=1000, rapid_mm_min=laser.travel_mm_min
    )
    assert out.read_bytes() == gcode.read_bytes()  # already normalised: streamed verbatim
    a, b = report.stats, raster.stats
    assert a["lines"] == b["lines"]
    assert a["bounds"] == pytest.approx(b["bounds"])
    assert a["laser_bounds"] == pytest.approx(b["laser_bounds"])
    assert a["laser_on_mm"] == pytest.approx(b["laser_on_mm"], rel=1e-6)
    assert a["travel_mm"] == pytest.approx(b["travel_mm"], rel=1e-6)
    assert a["estimated_s"] == pytest.approx(b["estimated_s"], rel=1e-4)
    assert report.warnings == raster.warnings == []
    (fast_text, fast_stats), (slow_text, slow_stats) = _both_paths(gcode)
    assert fast_text == slow_text and fast_stats == slow_stats


def _slow_chunk(raw: bytes, state: ModalState):
    interp = Interpreter(state, 5000.0)
    text = []
    for line in raw.split(b"\n")[:-1]:
        lexed = lex_line(line)
        interp.execute(lexed)
        if lexed.text:
            text.append(lexed.text + b"\n")
    return b"".join(text), interp.take_segments(), interp.state


def assert_fast_matches_reference(fast: FastResult, raw: bytes, start: ModalState) -> None:
    """The fast path's result for ``raw`` is the reference path's, bit for bit (so -0.0 and
    0.0 differ too): normalised text, end state and every segment column."""
    text, seg, end = _slow_chunk(raw, start.copy())
    assert fast.text == text, raw
    assert fast.state == end, raw
    for name in ("x0", "y0", "x1", "y1", "power_s", "rapid", "feed_mm_min", "m3"):
        a, b = getattr(fast.segments, name), getattr(seg, name)
        assert a.tobytes() == np.asarray(b, dtype=a.dtype).tobytes(), (name, raw)


def test_fast_path_never_accepts_what_the_reference_refuses() -> None:
    """Random near-G-code: the fast path either declines or agrees with the reference."""
    rng = np.random.default_rng(11)
    alphabet = list("GMXYFS") * 3 + list("0123456789") * 4 + list(".-- \n();!")
    words = ["G0", "G1", "G01", "M3", "M4", "M5", "M8", "X1", "Y-2.5", "X.5", "Y-.25", "F300",
             "S0", "S250", "G21", "G90", "X3.", "G17", "M9"]  # fmt: skip
    accepted = refused_by_both = 0
    for _ in range(1500):
        lines = []
        for _ in range(int(rng.integers(1, 6))):
            if rng.random() < 0.6:
                parts = rng.choice(words, size=int(rng.integers(1, 4)))
                lines.append("".join(parts))
            else:
                lines.append("".join(rng.choice(alphabet, size=int(rng.integers(1, 12)))))
        raw = ("\n".join(lines) + "\n").encode()
        start = ModalState(feed_mm_min=100.0 if rng.random() < 0.5 else 0.0, x=1.0)
        fast = fast_chunk(raw, start.copy(), 5000.0)
        try:
            _slow_chunk(raw, start.copy())
        except LineError:
            assert fast is None, raw
            refused_by_both += 1
            continue
        if fast is None:
            continue
        accepted += 1
        assert_fast_matches_reference(fast, raw, start)
    assert accepted > 200 and refused_by_both > 200


def test_fast_path_carries_sparse_modal_words_like_the_reference() -> None:
    """Raster-like code: long runs of X/S lines, rare G0/G1, F, M3/M4/M5 and M8/M9 (the fast
    path looks those up by binary search when they are few, else by a pass over the lines)."""
    rng = np.random.default_rng(3)
    lines = ["G21G90", "M4S0"]
    for row in range(120):
        lines.append(f"G0X{rng.integers(0, 50)}Y{row * 0.1:.1f}")
        if row % 3 == 0:
            feed = f"G1F{rng.integers(100, 9000)}"
            lines.append(rng.choice(["M3", "M4", "M5", "M8", "M9", feed]))
        lines.append(f"G1X{rng.integers(0, 50)}S0")
        for _ in range(int(rng.integers(5, 60))):
            lines.append(f"X{rng.uniform(0, 400):.2f}S{rng.integers(0, 1000)}")
    raw = ("\n".join(lines) + "\n").encode()
    start = ModalState(feed_mm_min=1200.0)
    fast = fast_chunk(raw, start.copy(), 5000.0)
    assert fast is not None
    assert_fast_matches_reference(fast, raw, start)
    # The lines that empty the planner (spindle and air changes) and S changes, for the model.
    interp = Interpreter(start.copy(), 5000.0)
    for index, line in enumerate(raw.split(b"\n")[:-1]):
        interp.line_index = index
        interp.execute(lex_line(line))
    assert fast.sync_lines.tolist() == interp.sync_lines
    assert fast.s_lines.tolist() == interp.s_lines
    assert len(interp.sync_lines) > 10


@pytest.mark.parametrize(
    "line",
    ["X1X2", "G1X1S5X2", "G1X1Y2S3F100M3M5", "G1G0X1", "M3X1Y1S1F1G21G90G54G17G94M8M5"],
)
def test_fast_path_declines_a_repeated_word_kind_near_or_far(line: str) -> None:
    """A kind repeated one word later or eight: the fast path declines, the reference refuses."""
    raw = f"G1X0F100\n{line}\nX3\n".encode()
    assert fast_chunk(raw, ModalState(feed_mm_min=100), 5000.0) is None
    with pytest.raises(LineError):
        _slow_chunk(raw, ModalState(feed_mm_min=100))
    ok = b"G1X0F100\nM3X1Y1S1F1G21G90G54G17G94M8\nX3\n"  # eleven words, no repeat
    assert fast_chunk(ok, ModalState(feed_mm_min=100), 5000.0) is not None
