"""Is an upload a design? Content sniffing for SVG and DXF (API.md: "sniffed by content").

Both look only at the first few kilobytes, so the upload path can call them on the head of a
file it is streaming. A file name proves nothing: a ``.svg`` that is HTML is not an SVG, and
a DXF saved as ``.txt`` still is one.
"""

from __future__ import annotations

import re
import zlib

#: How much of the file the sniffers need.
HEAD_BYTES = 4096

_XML_PROLOG = re.compile(
    rb"\A(?:\s+|<\?xml[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)*", re.S | re.I
)
_SVG_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?svg[\s/>]")
_DXF_START = re.compile(
    rb"\A\s*(?:999\s*\r?\n[^\n]*\n\s*)*0\s*\r?\nSECTION\s*\r?\n\s*2\s*\r?\n"
    rb"(?:HEADER|CLASSES|TABLES|BLOCKS|ENTITIES|OBJECTS|THUMBNAILIMAGE)\s*\r?\n"
)
_DXF_BINARY = b"AutoCAD Binary DXF\r\n\x1a\x00"


def looks_like_svg(head: bytes) -> bool:
    """Whether the file starting with ``head`` is an SVG (or a gzipped SVGZ) document."""
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, HEAD_BYTES)
        except zlib.error:
            return False
    if head[:3] == b"\xef\xbb\xbf":
        head = head[3:]
    elif head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            head = head.decode("utf-16", errors="ignore").encode("utf-8", errors="ignore")
        except UnicodeError:
            return False
    prolog = _XML_PROLOG.match(head)
    rest = head[prolog.end() :] if prolog else head
    return bool(_SVG_ROOT.match(rest))


def looks_like_dxf(head: bytes) -> bool:
    """Whether the file starting with ``head`` is a DXF drawing (ASCII or binary)."""
    if head.startswith(_DXF_BINARY):
        return True
    if head[:3] == b"\xef\xbb\xbf":
        head = head[3:]
    return bool(_DXF_START.match(head))


def design_kind(head: bytes) -> str | None:
    """``"svg"``, ``"dxf"`` or None for the file starting with ``head``."""
    if looks_like_svg(head):
        return "svg"
    if looks_like_dxf(head):
        return "dxf"
    return None
