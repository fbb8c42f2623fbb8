"""One line of G-code text → normalised bytes and its words (the reference, line-by-line path).

GRBL reads a line by dropping whitespace and control characters, skipping ``( )`` and ``;``
comments, and upper-casing letters; but its serial interrupt acts on real-time bytes (``!``
``~`` ``?`` and everything ≥ 0x80, plus 0x18 reset) wherever they occur. laserd sends lines
with comments already removed, so anything inside a comment is harmless and dropped, while the
same bytes in the code part are refused: sent, they would hold, resume or reset the machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from laserd.gcode.dialect import (
    ALLOWED_DOLLAR,
    LETTER_REFUSED,
    MAX_LINE_CHARS,
    REALTIME_CHARS,
    VALUE_LETTERS,
)
from laserd.gcode.errors import LineError

# A parenthesis comment runs to ')' or, unclosed, to the end of the line (as in GRBL); ';' runs
# to the end of the line. Whichever starts first wins, which the alternation gives for free.
_COMMENT_RE = re.compile(rb"\([^)]*\)?|;.*", re.DOTALL)
_WORD_RE = re.compile(rb"([A-Z])([^A-Z]*)")
_NUMBER_RE = re.compile(rb"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")
_WHITESPACE = b" \t\r"
_CODE_CHARS = (
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.+-" + _WHITESPACE
)


@dataclass(slots=True)
class Line:
    """A lexed line: what is streamed (``text``) and what it means (``words``)."""

    text: bytes
    words: list[tuple[int, float]]
    system: bool = False


EMPTY = Line(b"", [])


def _describe_bad_byte(b: int) -> str:
    if b in REALTIME_CHARS:
        return (
            f"real-time character {chr(b)!r} outside a comment "
            "(GRBL would act on it immediately)"
        )
    if b >= 0x80:
        return (
            f"byte 0x{b:02X} outside a comment "
            "(GRBL treats bytes from 0x80 up as real-time commands)"
        )
    if b < 0x20 or b == 0x7F:
        return f"control character 0x{b:02X} outside a comment"
    if b == ord("/"):
        return "block delete '/' is not supported"
    return f"unexpected character {chr(b)!r} (GRBL has no parameters or expressions)"


def lex_line(raw: bytes) -> Line:
    """Normalise one raw line (without its newline) or raise :class:`LineError`."""
    code = _COMMENT_RE.sub(b"", raw) if (b"(" in raw or b";" in raw) else raw
    bad = code.translate(None, _CODE_CHARS)
    if bad == b"%" and code.translate(None, _WHITESPACE) == b"%":
        return EMPTY
    if bad:
        dangerous = [b for b in bad if b in REALTIME_CHARS or b >= 0x80 or b < 0x20 or b == 0x7F]
        stripped = code.translate(None, _WHITESPACE)
        if not dangerous and stripped.startswith(b"$"):
            return _system_line(stripped)
        raise LineError(_describe_bad_byte(dangerous[0] if dangerous else bad[0]))
    text = code.translate(None, _WHITESPACE).upper()
    if not text:
        return EMPTY
    if text.startswith(b"$"):
        return _system_line(text)
    if not (65 <= text[0] <= 90):
        raise LineError(f"expected a command letter at the start of {text[:20].decode()!r}")
    words: list[tuple[int, float]] = []
    parts: list[bytes] = []
    for m in _WORD_RE.finditer(text):
        letter = m.group(1)[0]
        number = m.group(2)
        word = (m.group(1) + number).decode()
        if not number:
            raise LineError(f"word {chr(letter)!r} has no value")
        if not _NUMBER_RE.fullmatch(number):
            raise LineError(f"malformed number in {word!r}")
        if letter == ord("N"):
            continue
        if letter in LETTER_REFUSED:
            raise LineError(f"{word!r}: {LETTER_REFUSED[letter]}")
        if letter not in VALUE_LETTERS and letter not in (ord("G"), ord("M")):
            raise LineError(f"unsupported word {word!r}")
        words.append((letter, float(number)))
        parts.append(m.group(0))
    out = b"".join(parts)
    if len(out) > MAX_LINE_CHARS:
        raise LineError(
            f"line is {len(out)} characters after removing comments and spaces; "
            f"GRBL's line buffer holds {MAX_LINE_CHARS}"
        )
    return Line(out, words)


def _system_line(text: bytes) -> Line:
    text = text.upper()
    if text in ALLOWED_DOLLAR:
        return Line(text, [], system=True)
    if text.startswith(b"$J="):
        raise LineError("jogging ($J=) is not allowed inside a job")
    shown = text[:20].decode("ascii", "replace")
    raise LineError(f"system command {shown!r} is not allowed inside a job (only $H)")
