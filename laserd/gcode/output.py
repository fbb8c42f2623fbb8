"""Atomic output files and compact number formatting shared by the G-code writers.

Every generated file (normalised G-code, raster G-code, preview PNG) is written to a temporary
file in the destination folder and moved into place with :func:`os.replace`, so a reader — the
job streamer, a download — sees either the old complete file or the new complete file, never a
half-written one, even when processing is killed midway.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

#: Largest buffered write; the writers hand over whole row chunks, so this only batches syscalls.
WRITE_BUFFER_BYTES = 1 << 20


@contextlib.contextmanager
def atomic_writer(dest: Path) -> Iterator[BinaryIO]:
    """Yield a binary file that becomes ``dest`` only when the block finishes without error.

    The file is open for reading too, so a writer can copy what it already wrote (passes).
    """
    dest = Path(dest)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b", buffering=WRITE_BUFFER_BYTES) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def fmt_mm(value: float, decimals: int = 3) -> str:
    """Shortest decimal text for a coordinate: ``12.3`` not ``12.300``, ``5`` not ``5.000``.

    GRBL keeps about six significant digits in float32; three decimals (1 µm) are far below a
    laser's spot size, and trimming saves bytes in the 128-byte receive buffer.
    """
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text
