"""Comments of any length, and the content sniff that decides whether an upload is G-code.

Issue 12, item 16: a 300 KB comment line (a base64 thumbnail) failed the whole file with "line
is longer than 64 KiB", and G-code under ``.gco``, ``.g`` or ``.cnc`` was refused at upload.
"""

from __future__ import annotations

import random
import re
import tracemalloc
from pathlib import Path

import pytest

from laserd.gcode import GcodeError, analyse_gcode
from laserd.gcode import program as program_mod
from laserd.gcode.comments import CommentStripper, strip_comments
from laserd.gcode.sniff import SNIFF_CODE_BYTES, GcodeSniffer, sniff_gcode
from tests.gcode_samples import (
    LASER_BODY,
    LASER_BODY_NORMALISED,
    cura_file,
    one_line_picture_file,
    prusaslicer_file,
    thumbnail_b64,
)

BED = (400.0, 400.0)


def analyse(tmp_path: Path, content: bytes) -> tuple[dict, bytes]:
    src, out = tmp_path / "in.gcode", tmp_path / "out.gcode"
    src.write_bytes(content)
    report = analyse_gcode(src, out, bed_mm=BED, max_power_s=1000)
    return report.stats, out.read_bytes()


# --------------------------------------------------------------------------- the stripper

_REFERENCE_COMMENT = re.compile(rb"\([^)]*\)?|;.*", re.DOTALL)


def reference_strip(data: bytes) -> bytes:
    """GRBL's rule line by line (the lexer's regex on each piece between line ends)."""
    return b"".join(_REFERENCE_COMMENT.sub(b"", piece) for piece in re.split(rb"([\r\n])", data))


@pytest.mark.parametrize(
    ("length", "comment_weight"),
    [(40, 1), (3000, 0.002), (3000, 0.01)],
    ids=["dense-short", "sparse", "medium"],  # the stripper picks a method by density
)
def test_stripper_fed_in_any_pieces_equals_the_line_by_line_rule(
    length: int, comment_weight: float
) -> None:
    rng = random.Random(1216)  # fixed: CI is deterministic
    symbols = [b"G", b"1", b"X", b".", b" ", b"a", b"\n", b"\r", b"(", b";", b")"]
    weights = [1, 1, 1, 1, 1, 1, 0.3, 0.1, comment_weight, comment_weight, comment_weight]
    for _ in range(200 if length > 100 else 3000):
        n = rng.randint(0, length)
        data = b"".join(rng.choices(symbols, weights, k=n))
        expected = reference_strip(data)
        cuts = sorted(rng.sample(range(len(data) + 1), k=min(len(data) + 1, rng.randint(0, 6))))
        stripper = CommentStripper()
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert b"".join(stripper.feed(p) for p in pieces) == expected, (data, cuts)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (b"G1 X1 (move) Y2\n", b"G1 X1  Y2\n"),
        (b"G1 (open to the end\nG0 X1\n", b"G1 \nG0 X1\n"),
        (b"G1 (a ; b) X1 ; c ( d\n", b"G1  X1 \n"),
        (b"; (x)\nG0\r;y\rG1\n", b"\nG0\r\rG1\n"),
        (b"G0 )\n", b"G0 )\n"),  # a stray ')' is code, and the lexer refuses it
    ],
)
def test_stripper_follows_grbl_comment_rules(text: bytes, code: bytes) -> None:
    assert strip_comments(text) == code


def test_a_comment_split_across_blocks_carries_over() -> None:
    s = CommentStripper()
    assert s.feed(b"G0 X1 (long ") == b"G0 X1 "
    assert s.feed(b"still comment ; ( ") == b""
    assert s.feed(b"end) Y2 ;tail") == b" Y2 "
    assert s.feed(b" more tail") == b""
    assert s.feed(b"\rG1 X3\n") == b"\rG1 X3\n"


# --------------------------------------------------------------------------- the analysis


@pytest.mark.parametrize("paren", [False, True], ids=["semicolon", "parentheses"])
def test_a_300_kb_comment_line_is_dropped_and_the_file_analyses(
    tmp_path: Path, paren: bool
) -> None:
    stats, out = analyse(tmp_path, one_line_picture_file(300_000, paren=paren))
    assert out == LASER_BODY_NORMALISED
    assert stats["lines"] == 7 and stats["laser_on_mm"] == pytest.approx(40)


@pytest.mark.parametrize("make", [prusaslicer_file, cura_file], ids=["prusaslicer", "cura"])
def test_slicer_thumbnail_blocks_are_comments(tmp_path: Path, make) -> None:
    stats, out = analyse(tmp_path, make())
    assert out == LASER_BODY_NORMALISED
    assert stats["lines"] == 7


def _peak_bytes_analysing(tmp_path: Path, comment_mb: int) -> int:
    src = tmp_path / f"comment{comment_mb}.gcode"
    with open(src, "wb") as fh:
        fh.write(b"G0 X1 ;")
        for _ in range(comment_mb * 2):
            fh.write(thumbnail_b64(512 * 1024))
        fh.write(b"\n(" + thumbnail_b64(512 * 1024) * (comment_mb * 2) + b")\n" + LASER_BODY)
    out = tmp_path / "out.gcode"
    tracemalloc.start()
    try:
        analyse_gcode(src, out, bed_mm=BED, max_power_s=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.read_bytes() == b"G0X1\n" + LASER_BODY_NORMALISED
    return peak


def test_comment_lines_cost_constant_memory(tmp_path: Path) -> None:
    """Two comment lines of 1 MB each, then of 12 MB each: the same peak (a block or two)."""
    _peak_bytes_analysing(tmp_path, 1)  # warm: lazy imports and caches are not the point
    small = _peak_bytes_analysing(tmp_path, 1)
    large = _peak_bytes_analysing(tmp_path, 12)
    assert large - small < program_mod.BLOCK_BYTES // 2, (small, large)


def test_only_the_code_part_of_a_line_is_limited(tmp_path: Path) -> None:
    code = b"G1X1" * (20 * 1024)  # 80 KiB of code on one line
    src = tmp_path / "in.gcode"
    src.write_bytes(b"G0X1 ; " + thumbnail_b64(200_000) + b"\n" + code + b" ; short\nG0X2\n")
    with pytest.raises(GcodeError) as info:
        analyse_gcode(src, tmp_path / "out.gcode", bed_mm=BED, max_power_s=1000)
    assert [i["line"] for i in info.value.issues] == [2]
    assert "81920 characters after removing comments" in info.value.issues[0]["message"]


def test_a_code_line_over_64_kib_is_refused_without_being_held(tmp_path: Path) -> None:
    src = tmp_path / "in.gcode"
    src.write_bytes(b"G0X1 ; " + thumbnail_b64(300_000) + b"\n" + b"G1X1" * (1 << 18) + b"\nG0X2\n")
    with pytest.raises(GcodeError) as info:
        analyse_gcode(src, tmp_path / "out.gcode", bed_mm=BED, max_power_s=1000)
    assert [i["line"] for i in info.value.issues] == [2]
    assert "longer than 64 KiB without its comments" in info.value.issues[0]["message"]


# --------------------------------------------------------------------------- the sniff


@pytest.mark.parametrize(
    "content",
    [
        LASER_BODY,
        prusaslicer_file(),
        cura_file(),
        one_line_picture_file(300_000),
        one_line_picture_file(300_000, paren=True),
        b"%\nN10 G00 X0 Y0\nN20 M03 S1000\nN30 G01 X10 F500\n%\n",  # CNC style
        b"$H\nG0X1\nG1 X2 E5 F100\n",  # bad lines are the analysis's to report, by number
    ],
    ids=["plain", "prusaslicer", "cura", "semicolon-300k", "paren-300k", "cnc", "some-bad"],
)
def test_sniff_accepts_real_gcode(content: bytes) -> None:
    assert sniff_gcode(content).gcode


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"Shopping list\nmilk\neggs\n", "no G or M command"),
        (b"G1 is a road\nmilk\neggs\nM5 motorway\n", "no G or M command"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>\n', "no G or M command"),
        (b'{"G1": 1}\n', "no G or M command"),
        (b"import os\nos.system('G1')\nG1\n", "most of its lines"),
        (b"; only a comment\n(and another)\n\n", "no G-code commands"),
        (b"; thumbnail begin\n; " + thumbnail_b64(100_000) + b"\n", "no G-code commands"),
        (bytes(range(256)) * 8, "binary"),
        (b"G1 X1\n\x01\x02\x03\x04\n\x05\x06\x07\n", "most of its lines"),
    ],
)
def test_sniff_refuses_what_is_not_gcode_and_says_why(content: bytes, reason: str) -> None:
    verdict = sniff_gcode(content)
    assert not verdict.gcode
    assert reason in verdict.reason


def test_sniff_names_the_first_line_that_is_not_gcode() -> None:
    verdict = sniff_gcode(b"; header\nhello world\nG1 X1\nbye\nfoo\n")
    assert "line 2: 'hello world'" in verdict.reason


def test_sniff_stops_once_it_has_seen_enough_code() -> None:
    sniffer = GcodeSniffer()
    sniffer.feed(prusaslicer_file(body=b""))  # 200 KB of comments: not yet decided
    assert not sniffer.done
    line = b"G1 X10.125 Y20.250 S500 F1200\n"
    sniffer.feed(line * (SNIFF_CODE_BYTES // len(line) + 10))
    assert sniffer.done
    sniffer.feed(b"\x00 binary after the sniff is the analysis's business\n")
    assert sniffer.verdict().gcode
