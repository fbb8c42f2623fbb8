"""Atomic output files, their size limits, and compact number formatting for the G-code writers.

Every generated file (normalised G-code, raster G-code, preview PNG) is written to a temporary
file in the destination folder and moved into place with :func:`os.replace`, so a reader — the
job streamer, a download — sees either the old complete file or the new complete file, never a
half-written one, even when processing is killed midway.

A raster job can be far larger than its upload (a 1 MB noise picture at 0.05 mm and 50 passes
made 32 GB), so writers get :class:`OutputLimits`: the size is checked against the cap and
the free space before writing (:meth:`OutputLimits.check_predicted`), and a
:class:`SpaceGuard` keeps checking both while writing, so a disk that fills up from elsewhere
stops the writer while the reserve is still free, and the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from laserd.errors import InsufficientStorage, OutputTooLarge

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


def free_bytes(path: Path) -> int:
    """Bytes free for an unprivileged writer on the filesystem holding ``path``."""
    return shutil.disk_usage(path).free


def fmt_bytes(n: float) -> str:
    """``39.5 GB``, ``120 MB``, ``900 kB`` in units of 1024, as the settings count ``_mb``."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


@dataclass(frozen=True, slots=True)
class OutputLimits:
    """How much one generated G-code file may take: ``max_bytes`` (``[processing]
    max_gcode_mb``) and the disk's free space less ``reserve_bytes`` (``[storage]
    min_free_mb``), measured on the filesystem of ``directory``."""

    max_bytes: int
    reserve_bytes: int
    directory: Path
    #: While writing, the free space is measured after every this many bytes.
    check_every_bytes: int = 16 << 20
    #: How free space is measured (tests pass a fake disk); default :func:`free_bytes`.
    free: Callable[[Path], int] | None = field(default=None, compare=False)

    def room(self) -> int:
        """Bytes a new file may still take on the disk without touching the reserve."""
        return (self.free or free_bytes)(self.directory) - self.reserve_bytes

    def check_predicted(self, predicted: int, what: str, how: str = "") -> None:
        """Refuse (:class:`~laserd.errors.OutputTooLarge`) a file predicted to be too big."""
        details = {"predicted_bytes": predicted, "max_bytes": self.max_bytes}
        if predicted > self.max_bytes:
            raise OutputTooLarge(
                f"{what} would make up to {fmt_bytes(predicted)} of G-code{how}; the limit is "
                f"{fmt_bytes(self.max_bytes)} ([processing] max_gcode_mb). Use fewer passes, a "
                "larger line interval or a smaller size.",
                details={**details, "limit": "max_gcode_mb"},
            )
        room = self.room()
        if predicted > room:
            raise OutputTooLarge(
                f"{what} would make up to {fmt_bytes(predicted)} of G-code{how}, but only "
                f"{fmt_bytes(max(0, room))} of disk space is free for it (keeping "
                f"{fmt_bytes(self.reserve_bytes)} in reserve). Use fewer passes, a larger line "
                "interval or a smaller size, or free some space.",
                details={**details, "limit": "free_space", "room_bytes": max(0, room)},
            )


class SpaceGuard:
    """Checks a file being written: its size against the cap at every :meth:`check`, and the
    disk's free space against the reserve every ``check_every_bytes`` of growth (a ``statvfs``).

    The writer calls :meth:`check` after each chunk it writes; an exception propagates out of
    :func:`atomic_writer`, which removes the temporary file.
    """

    __slots__ = ("_checked_at", "_fh", "_limits")

    def __init__(self, fh: BinaryIO, limits: OutputLimits) -> None:
        self._fh = fh
        self._limits = limits
        self._checked_at = 0

    def check(self) -> None:
        size = self._fh.tell()
        limits = self._limits
        if size > limits.max_bytes:
            raise OutputTooLarge(
                f"the G-code grew past the limit of {fmt_bytes(limits.max_bytes)} "
                "([processing] max_gcode_mb) while being written; nothing was kept.",
                details={"written_bytes": size, "max_bytes": limits.max_bytes},
            )
        if size - self._checked_at >= limits.check_every_bytes:
            self._checked_at = size
            if limits.room() < 0:
                raise InsufficientStorage(
                    f"the disk filled up while writing the G-code (after {fmt_bytes(size)}; less "
                    f"than the reserve of {fmt_bytes(limits.reserve_bytes)} was left); "
                    "nothing was kept."
                )


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
