"""Uploads into the library: a plain async byte source streamed to disk, typed by content.

The bytes (from any source: the web layer's multipart part, a test, a future bridge) are
streamed to a temporary file in the state folder (never held in memory), with the size limit
enforced while streaming and the SHA-256 computed on the way. The type is decided from the
content alone (image signatures; G-code by a sniff of its code, comments skipped, under any
file name), the display name is sanitised, and the stored name is generated: nothing the client
sends becomes part of a path. The finished upload is renamed into place atomically, and any
failure (limit, type, disk space, disconnect) removes the partial file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import shutil
import tempfile
import unicodedata
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laserd import errors
from laserd.designs.sniff import HEAD_BYTES, design_kind
from laserd.gcode.sniff import GcodeSniffer
from laserd.settings import Settings

log = logging.getLogger(__name__)

#: Bytes kept from the start of an upload for the image signatures and the design sniff (an
#: SVG's root element can follow an XML declaration, comments and a DOCTYPE).
SNIFF_BYTES = HEAD_BYTES
#: Bytes gathered before one hand-over to the writer thread (hashing and writing).
FLUSH_BYTES = 1 << 20
MAX_NAME_CHARS = 120


# --------------------------------------------------------------------------- names and types


def sanitize_name(raw: str | None) -> str:
    """A display name: no directories, no control or format characters, bounded length."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(" " if ch.isspace() else ch for ch in name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    name = " ".join(name.split()).strip(" .")
    if not name:
        return "upload"
    if len(name) > MAX_NAME_CHARS:
        stem, ext = os.path.splitext(name)
        ext = ext if len(ext) <= 16 else ""
        name = stem[: MAX_NAME_CHARS - len(ext)].rstrip(" .") + ext
    return name


def _image_type(head: bytes) -> str | None:
    """File extension for a supported image signature, else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return ".gif"
    if head.startswith(b"BM") and len(head) >= 26:
        return ".bmp"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return ".webp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return ".tif"
    return None


#: What the 415 answer lists as accepted.
ACCEPTED_TYPES = (
    "G-code (text of G-code commands, under any file name: .gcode .gco .g .nc .cnc .ngc .tap "
    ".txt ...), an image (PNG, JPEG, BMP, GIF, WebP, TIFF) or a vector design (SVG, DXF)"
)


def detect_kind(head: bytes, sniffer: GcodeSniffer) -> tuple[str, str]:
    """``(kind, stored extension)`` from the content alone, else 415 saying why.

    Images by their signature in ``head``; SVG and DXF designs by their start
    (:mod:`laserd.designs.sniff`); G-code by :class:`~laserd.gcode.sniff.GcodeSniffer`
    (fed the whole upload as it streamed). The client's file name plays no part.
    """
    ext = _image_type(head)
    if ext is not None:
        return "image", ext
    design = design_kind(head)
    if design is not None:
        return design, f".{design}"
    verdict = sniffer.verdict()
    if verdict.gcode:
        return "gcode", ".gcode"
    raise errors.UnsupportedMediaType(
        f"Not a supported file: {verdict.reason}. Accepted: {ACCEPTED_TYPES}."
    )


# --------------------------------------------------------------------------- upload streaming


class _Sink:
    """A temporary file being filled, hashed and sniffed; every method runs in a worker thread."""

    def __init__(self, tmp_dir: Path) -> None:
        tmp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=tmp_dir)
        self.path = Path(name)
        self.fh = os.fdopen(fd, "wb")
        self.sha = hashlib.sha256()
        self.sniffer = GcodeSniffer()

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.sniffer.feed(data)
        self.fh.write(data)

    def finish(self, dest: Path) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.replace(self.path, dest)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.fh.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclass(slots=True)
class StoredUpload:
    name: str
    kind: str
    size: int
    sha256: str
    stored_name: str


#: ``OSError.errno`` values that mean the disk (or the process's file-size limit) is full.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def check_free_space(settings: Settings, incoming_bytes: int = 0) -> None:
    """507 when storing ``incoming_bytes`` would leave less than ``min_free_mb`` free."""
    free = _free_bytes(settings.storage.state_dir)
    if free - incoming_bytes < settings.storage.min_free_mb * 1024 * 1024:
        raise errors.InsufficientStorage(
            "Not enough free disk space on the laserd host for this file."
        )


def upload_limit(settings: Settings) -> tuple[int, errors.PayloadTooLarge]:
    """The largest upload in bytes, and the 413 that refuses a larger one."""
    return settings.storage.max_upload_mb * 1024 * 1024, errors.PayloadTooLarge(
        f"The file is larger than the limit of {settings.storage.max_upload_mb} MB."
    )


async def receive(
    settings: Settings, source: AsyncIterable[bytes], filename: str | None
) -> StoredUpload:
    """Stream ``source`` into ``uploads/`` (see module doc); 413/415/422/507 on refusal."""
    limit, too_large = upload_limit(settings)
    name = sanitize_name(filename)
    loop = asyncio.get_running_loop()
    sink = await loop.run_in_executor(None, _Sink, settings.tmp_dir)
    try:
        head = bytearray()
        pending = bytearray()
        size = 0
        async for chunk in source:
            size += len(chunk)
            if size > limit:
                raise too_large
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            pending += chunk
            if len(pending) >= FLUSH_BYTES:
                data = bytes(pending)
                pending.clear()
                await loop.run_in_executor(None, sink.write, data)
        if pending:
            await loop.run_in_executor(None, sink.write, bytes(pending))
        if size == 0:
            raise errors.ValidationFailed.field("file", "the file is empty")
        kind, ext = detect_kind(bytes(head), sink.sniffer)
        check_free_space(settings)
        stored_name = f"{uuid.uuid4().hex}{ext}"
        settings.uploads_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        await loop.run_in_executor(None, sink.finish, settings.uploads_dir / stored_name)
        return StoredUpload(name, kind, size, sink.sha.hexdigest(), stored_name)
    except BaseException as exc:
        await asyncio.shield(loop.run_in_executor(None, sink.discard))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            # The disk filled up while the body streamed in (the size was not declared, or
            # something else wrote meanwhile): the part file is gone, answer 507, not 500.
            log.warning("upload refused: the disk filled up while writing it (%s)", exc)
            raise errors.InsufficientStorage(
                "The disk of the laserd host filled up while storing this file."
            ) from None
        raise


def outputs(settings: Settings, file_id: int) -> list[Path]:
    """What processing writes for a file: its G-code and previews."""
    return [
        settings.gcode_path(file_id),
        settings.preview_path(file_id),
        settings.preview_path(file_id, thumb=True),
    ]


def artefacts(settings: Settings, file: dict[str, Any]) -> list[Path]:
    """Every path on disk that belongs to a file row: the upload and its outputs."""
    return [settings.uploads_dir / file["stored_name"], *outputs(settings, int(file["id"]))]


def remove_paths(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
