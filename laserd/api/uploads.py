"""Multipart uploads: the web layer's half of accepting a file.

The file library accepts an upload from any async byte source; here the ``file`` part of a
``multipart/form-data`` request becomes that source. What only HTTP knows stays here: the
content type, the early 413 from ``Content-Length`` (with the multipart framing allowance),
the 507 before reading a body that could not be stored, and malformed multipart (400/422).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from laserd import errors
from laserd.library.service import FileLibrary, Row
from laserd.library.uploads import upload_limit
from laserd.settings import Settings

READ_CHUNK_BYTES = 256 * 1024
#: Multipart framing allowance over the file size when checking Content-Length early.
MULTIPART_SLACK_BYTES = 64 * 1024
#: Other form fields are read and ignored, up to this much in total.
MAX_OTHER_FIELDS_BYTES = 64 * 1024


async def _file_part(request: web.Request) -> BodyPartReader:
    """The multipart part named ``file``; other fields are read (bounded) and ignored."""
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError) as exc:
        raise errors.BadRequest(f"The multipart body is malformed: {exc}") from None
    other_bytes = 0
    while True:
        try:
            part = await reader.next()
        except (ValueError, HttpProcessingError) as exc:
            # aiohttp refuses control characters and other garbage in part headers.
            raise errors.BadRequest(f"The multipart body is malformed: {exc}") from None
        if part is None:
            raise errors.ValidationFailed.field(
                "file", "a multipart field named 'file' is required"
            )
        if not isinstance(part, BodyPartReader):
            raise errors.BadRequest("Nested multipart bodies are not accepted.")
        if part.name == "file":
            return part
        while chunk := await part.read_chunk(8192):
            other_bytes += len(chunk)
            if other_bytes > MAX_OTHER_FIELDS_BYTES:
                raise errors.PayloadTooLarge("The form fields besides the file are too large.")


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(READ_CHUNK_BYTES):
        yield chunk


async def accept_multipart(
    request: web.Request, settings: Settings, library: FileLibrary, project: Row
) -> Row:
    """Hand the ``file`` part of ``request`` to the library as an upload into ``project``."""
    if request.content_type != "multipart/form-data":
        raise errors.BadRequest(
            "Uploads are multipart/form-data with the file in a field named 'file'."
        )
    limit, too_large = upload_limit(settings)
    declared = request.content_length
    if declared is not None and declared > limit + MULTIPART_SLACK_BYTES:
        raise too_large
    library.check_room(min(declared or 0, limit))
    part = await _file_part(request)
    return await library.accept(project, _chunks(part), part.filename)
