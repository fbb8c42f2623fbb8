"""The eight-bytes-at-a-time number parser of the fast path gives ``float``'s value, bit for bit."""

from __future__ import annotations

import random

import numpy as np
import pytest

from laserd.gcode.errors import LineError
from laserd.gcode.fast import fast_chunk
from laserd.gcode.interp import ModalState
from laserd.gcode.numbers import parse_numbers
from tests.unit.test_gcode import _slow_chunk, assert_fast_matches_reference

EDGES = ["0", "-0", ".5", "5.", "-.5", "-5.", "0.0", "-0.000", "00012.3400", "1234567.8",
         "12345678", "99999999", "-9999999", ".0000001", "-.1234567", "0.1", "0.3", "2.675",
         "1.005", "-1234567.89", "123456789", ".00000001", "3.14159265358979"]  # fmt: skip


def _random_number(rng: random.Random) -> str:
    """Mostly what CAM programs write (up to eight characters), some longer."""
    kind = rng.random()
    if kind < 0.05:
        return rng.choice(EDGES)
    longer = kind > 0.96
    sign = "-" if rng.random() < 0.3 else ""
    whole = str(rng.randint(0, 10 ** rng.randint(0, 7 if longer else 3)))
    if kind < 0.3:
        return sign + whole
    frac = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 7 if longer else 3)))
    if whole == "0" and rng.random() < 0.3:
        whole = ""  # ".5"
    if not whole and not frac:
        frac = "7"
    return f"{sign}{whole}.{frac}"


def _parse(tokens: list[str]) -> np.ndarray | None:
    text = "".join("X" + t for t in tokens).encode() + b"\n"
    length = np.array([len(t) for t in tokens], dtype=np.int64)
    start = np.cumsum(length + 1) - length
    return parse_numbers(text, start, length)


@pytest.mark.parametrize("seed", range(4))
def test_numbers_equal_float_bit_for_bit(seed: int) -> None:
    rng = random.Random(seed)
    tokens = [_random_number(rng) for _ in range(5000)]
    got = _parse(tokens)
    assert got is not None
    want = np.array([float(t) for t in tokens])
    # Same bits: also tells -0.0 from 0.0.
    assert got.view(np.uint64).tolist() == want.view(np.uint64).tolist()
    assert any(len(t) > 8 for t in tokens)  # the per-number fallback was exercised too


def test_edge_numbers_and_the_fallback_for_many_long_ones() -> None:
    tokens = EDGES + ["1.5"] * 8 * len(EDGES)
    got = _parse(tokens)
    assert got is not None
    want = np.array([float(t) for t in tokens])
    assert got.view(np.uint64).tolist() == want.view(np.uint64).tolist()
    assert _parse(["-1234.56789"] * 3 + ["1"]) is None  # the caller parses them another way
    assert _parse([]) is not None


@pytest.mark.parametrize("seed", range(3))
def test_fast_path_reads_numbers_of_every_length_like_the_reference(seed: int) -> None:
    rng = random.Random(100 + seed)
    lines = ["G21G90", "M4S0", "G1F1200"]
    for _ in range(3000):
        x, y = _random_number(rng), _random_number(rng)
        s = str(rng.randint(0, 1000))
        f = rng.randint(1, 9000)
        lines.append(rng.choice([f"X{x}Y{y}S{s}", f"G0X{x}", f"Y{y}", f"X{x}S{s}F{f}"]))
    raw = ("\n".join(lines) + "\n").encode()
    start = ModalState(feed_mm_min=100.0)
    fast = fast_chunk(raw, start.copy(), 5000.0)
    assert fast is not None
    assert_fast_matches_reference(fast, raw, start)


@pytest.mark.parametrize("number", ["1.2.3", "-1..5", "..5", "5..", "1234.5.6", "-12345.6.789"])
def test_a_number_with_two_dots_is_left_to_the_reference_path(number: str) -> None:
    """The parser finds a second dot itself (short numbers by the dot test, long ones by
    ``float``); the chunk falls back to the reference path, which names the line."""
    with pytest.raises(ValueError):
        _parse(["1.5"] * 10 + [number, "2"])
    assert fast_chunk(f"G1F100\nX1\nX{number}\n".encode(), ModalState(), 5000.0) is None
    # Mostly long numbers: the whole chunk is parsed another way, and still declined.
    lines = "".join(f"X{number}\n" if i == 3 else "X-1234.56789\n" for i in range(8))
    assert fast_chunk(f"G1F100\n{lines}".encode(), ModalState(), 5000.0) is None
    with pytest.raises(LineError, match="malformed number"):
        _slow_chunk(f"G1F100\nX{number}\n".encode(), ModalState())
