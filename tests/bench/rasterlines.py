"""The raster-like G-code both streaming benchmarks send, so their figures compare.

Short lines such as ``G1X12.3S455`` are what an engraved photo becomes and what stresses a
sender most: per-line overhead dominates, so a send-and-wait sender loses most of the link.
Lines come normalised (no spaces or comments), exactly the bytes that go on the wire.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

HEADER = ("G21", "G90", "M4S0", "G1F3000")


def iter_raster_lines(count: int = 3000, *, width_mm: float = 50.0, step_mm: float = 0.1,
                      row_mm: float = 0.1, seed: int = 1) -> Iterator[str]:  # fmt: skip
    """``count`` lines: a header, then serpentine rows of short G1 moves with varying power."""
    rng = random.Random(seed)
    emitted = 0
    for line in HEADER[:count]:
        emitted += 1
        yield line
    steps = max(1, round(width_mm / step_mm))
    row = 0
    while emitted < count:
        y = row * row_mm
        yield f"G1Y{y:.1f}S0"
        emitted += 1
        for i in range(1, steps + 1):
            if emitted >= count:
                return
            k = i if row % 2 == 0 else steps - i
            yield f"G1X{k * step_mm:.1f}S{rng.randrange(0, 1000)}"
            emitted += 1
        row += 1


def raster_lines(count: int = 3000, **kwargs: float) -> list[str]:
    return list(iter_raster_lines(count, **kwargs))  # type: ignore[arg-type]


def write_raster_file(path: str | Path, count: int = 3000, **kwargs: float) -> int:
    """Write the lines with ``\\n`` endings; return the payload size in bytes."""
    data = "".join(line + "\n" for line in iter_raster_lines(count, **kwargs))  # type: ignore[arg-type]
    Path(path).write_text(data, encoding="ascii")
    return len(data)


def payload_bytes(lines: list[str]) -> int:
    """Bytes on the wire for these lines (each plus its ``\\n``)."""
    return sum(len(line) + 1 for line in lines)
