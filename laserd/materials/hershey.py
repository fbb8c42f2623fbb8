"""Single-stroke text from the Hershey "simplex roman" font, for labels that engrave as lines.

The Hershey fonts were digitised by Dr A. V. Hershey at the U.S. Naval Weapons Laboratory
(NBS Special Publication 424, "A contribution to computer typesetting techniques", 1976) and
are in the public domain. The glyphs below are the simplex roman characters laserd's labels
need (digits, ``%``, ``/``, ``.``, ``-``, space and the letters of "mm/min"), written out from
that public-domain data in its usual ASCII-indexed form (for example Paul Bourke's
"Hershey Vector Font" page): each glyph is an advance width and strokes of (x, y) points on a
grid where the baseline is y = 0 and capitals and digits are 21 units tall.

Only what a test-grid label needs; an unknown character is drawn as a space (callers choose
their text, so this never hides user input).
"""

from __future__ import annotations

import numpy as np

CAP_HEIGHT = 21.0

Stroke = tuple[tuple[int, int], ...]


def _strokes(data: str) -> tuple[Stroke, ...]:
    """``"x,y x,y | x,y …"``: points of a stroke separated by spaces, strokes by ``|``."""
    return tuple(
        tuple((int(x), int(y)) for x, y in (pt.split(",") for pt in stroke.split()))
        for stroke in data.split("|")
        if stroke.strip()
    )


#: character → (advance width, strokes)
GLYPHS: dict[str, tuple[int, tuple[Stroke, ...]]] = {
    " ": (16, _strokes("")),
    "0": (
        20,
        _strokes(
            "9,21 6,20 4,17 3,12 3,9 4,4 6,1 9,0 11,0 14,1 16,4 17,9 17,12 16,17 14,20 11,21 9,21"
        ),
    ),
    "1": (20, _strokes("6,17 8,18 11,21 11,0")),
    "2": (
        20,
        _strokes("4,16 4,17 5,19 6,20 8,21 12,21 14,20 15,19 16,17 16,15 15,13 13,10 3,0 17,0"),
    ),
    "3": (
        20,
        _strokes("5,21 16,21 10,13 13,13 15,12 16,11 17,8 17,6 16,3 14,1 11,0 8,0 5,1 4,2 3,4"),
    ),
    "4": (20, _strokes("13,21 3,7 18,7 | 13,21 13,0")),
    "5": (
        20,
        _strokes(
            "15,21 5,21 4,12 5,13 8,14 11,14 14,13 16,11 17,8 17,6 16,3 14,1 11,0 8,0 5,1 4,2 3,4"
        ),
    ),
    "6": (
        20,
        _strokes(
            "16,18 15,20 12,21 10,21 7,20 5,17 4,12 4,7 5,3 7,1 10,0 11,0 14,1 16,3 17,6 "
            "17,7 16,10 14,12 11,13 10,13 7,12 5,10 4,7"
        ),
    ),
    "7": (20, _strokes("17,21 7,0 | 3,21 17,21")),
    "8": (
        20,
        _strokes(
            "8,21 5,20 4,18 4,16 5,14 7,13 11,12 14,11 16,9 17,7 17,4 16,2 15,1 12,0 8,0 "
            "5,1 4,2 3,4 3,7 4,9 6,11 9,12 13,13 15,14 16,16 16,18 15,20 12,21 8,21"
        ),
    ),
    "9": (
        20,
        _strokes(
            "16,14 15,11 13,9 10,8 9,8 6,9 4,11 3,14 3,15 4,18 6,20 9,21 10,21 13,20 "
            "15,18 16,14 16,9 15,4 13,1 10,0 8,0 5,1 4,3"
        ),
    ),
    ".": (10, _strokes("5,2 4,1 5,0 6,1 5,2")),
    "-": (26, _strokes("4,9 22,9")),
    "/": (22, _strokes("20,25 2,-7")),
    "%": (
        24,
        _strokes(
            "21,21 3,0 | 8,21 10,19 10,17 9,15 7,14 5,14 3,16 3,18 4,20 6,21 8,21 10,20 "
            "13,19 16,19 19,20 21,21 | 17,7 15,6 14,4 14,2 16,0 18,0 20,1 21,3 21,5 19,7 "
            "17,7"
        ),
    ),
    "i": (8, _strokes("3,21 4,20 5,21 4,22 3,21 | 4,14 4,0")),
    "m": (
        30,
        _strokes(
            "4,14 4,0 | 4,10 7,13 9,14 12,14 14,13 15,10 15,0 | 15,10 18,13 20,14 23,14 "
            "25,13 26,10 26,0"
        ),
    ),
    "n": (19, _strokes("4,14 4,0 | 4,10 7,13 9,14 12,14 14,13 15,10 15,0")),
}


def text_width(text: str, height_mm: float) -> float:
    """Advance width of ``text`` at a cap height of ``height_mm``."""
    scale = height_mm / CAP_HEIGHT
    return sum(GLYPHS.get(ch, GLYPHS[" "])[0] for ch in text) * scale


def text_strokes(text: str, height_mm: float, x_mm: float, y_mm: float) -> list[np.ndarray]:
    """Open polylines (each ``(N, 2)`` mm) writing ``text`` with its baseline's left end at
    (``x_mm``, ``y_mm``), capitals ``height_mm`` tall."""
    scale = height_mm / CAP_HEIGHT
    out: list[np.ndarray] = []
    pen = x_mm
    for ch in text:
        advance, strokes = GLYPHS.get(ch, GLYPHS[" "])
        for stroke in strokes:
            pts = np.array(stroke, dtype=np.float64) * scale
            pts[:, 0] += pen
            pts[:, 1] += y_mm
            out.append(pts)
        pen += advance * scale
    return out
