"""Is an upload G-code? Decided from its content, whatever its file name.

Tools name G-code files ``.gcode``, ``.gco`` (Mr Beam, slicers), ``.g``, ``.nc``, ``.cnc``,
``.ngc``, ``.tap``, ``.txt`` and more; the name proves nothing either way, so only the content
counts. Real files often open with long comment blocks (a slicer's settings, base64 thumbnails
of hundreds of kilobytes), so the sniff looks at the *code* of the file, comments dropped as the
upload streams past (:class:`~laserd.gcode.comments.CommentStripper`, constant memory), until
it has seen :data:`SNIFF_CODE_BYTES` of code or the end of the file.

It is only a sniff: the analysis that follows checks every line and reports each problem with
its line number, so a G-code file with a few bad lines is accepted here. What is refused is
text that is mostly not G-code (notes, SVG, JSON, a script), binary data, and text without a
single ``G`` or ``M`` command — each with a reason the 415 answer can show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from laserd.gcode.comments import CommentStripper

#: Code (comments removed) looked at before deciding; a few hundred typical lines.
SNIFF_CODE_BYTES = 16 * 1024
#: Lines of words such as ``N10 G1 X-1.5 Y.2 F1200`` (spaces and tabs removed, upper case).
_WORDS = re.compile(rb"(?:[A-Z][-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))+")
_COMMAND = re.compile(rb"[GM][0-9]")
_BLANKS = b" \t"
_NOT_TEXT = bytes(range(0x00, 0x09)) + bytes(range(0x0B, 0x20)) + bytes(range(0x7F, 0x100))


@dataclass(frozen=True, slots=True)
class Verdict:
    """``gcode`` is the decision; ``reason`` says why not, for the 415 answer."""

    gcode: bool
    reason: str = ""


class GcodeSniffer:
    """Fed the upload's bytes in order (``feed``), then asked for a :meth:`verdict`.

    Work stops once enough code has been seen (``done``), so feeding a whole 100 MB upload
    costs a few kilobytes of work; a file of nothing but comments is scanned to its end, in
    constant memory. Runs in a worker thread beside the writer: it never touches the loop.
    """

    __slots__ = ("_binary", "_code", "_comments", "done")

    def __init__(self) -> None:
        self._code = bytearray()
        self._comments = CommentStripper()
        self._binary = False
        self.done = False

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        if b"\x00" in data:  # text never holds NUL; images and archives do
            self._binary = self.done = True
            return
        code = self._comments.feed(data)
        self._code += code[: SNIFF_CODE_BYTES - len(self._code)]
        if len(self._code) >= SNIFF_CODE_BYTES:
            self.done = True

    def verdict(self) -> Verdict:
        """The decision on what was fed (the whole file, or enough of its start)."""
        if self._binary:
            return Verdict(False, "it holds binary data, not text")
        lines = bytes(self._code).split(b"\n")
        if self.done and len(lines) > 1:
            lines = lines[:-1]  # cut off at the sniff limit
        code_lines = other = 0
        has_command = False
        first_other: tuple[int, bytes] | None = None
        for lineno, line in enumerate(lines, 1):
            for part in line.split(b"\r"):
                text = part.translate(None, _BLANKS).upper()
                if not text or text == b"%" or text.startswith(b"$"):
                    continue  # blank, a program delimiter, a system command ($H)
                if text.translate(None, _NOT_TEXT) != text or not _WORDS.fullmatch(text):
                    other += 1
                    if first_other is None:
                        first_other = (lineno, part.strip())
                    continue
                code_lines += 1
                has_command = has_command or _COMMAND.search(text) is not None
        if code_lines == 0 and other == 0:
            return Verdict(False, "it holds no G-code commands (only comments or blank lines)")
        if not has_command:
            return Verdict(False, _not_gcode("it has no G or M command", first_other))
        if code_lines < other:
            return Verdict(
                False, _not_gcode("most of its lines are not G-code commands", first_other)
            )
        return Verdict(True)


def _not_gcode(summary: str, first_other: tuple[int, bytes] | None) -> str:
    if first_other is None:
        return summary
    lineno, text = first_other
    shown = "".join(ch if ch.isprintable() else "?" for ch in text[:40].decode("latin-1"))
    return f"{summary} (line {lineno}: {shown!r})"


def sniff_gcode(data: bytes) -> Verdict:
    """The verdict on a whole text held in memory (small files, tests)."""
    sniffer = GcodeSniffer()
    sniffer.feed(data)
    return sniffer.verdict()
