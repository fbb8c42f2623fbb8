"""Vectorised evaluation of plain G-code chunks (the fast path).

Most uploads, and all raster output, are long runs of lines such as ``G1X12.3S400`` with no
comments, arcs, relative moves or unusual commands. For such a chunk every check and every
modal look-up can be done with numpy over the whole chunk at once: words are found by byte
class, numbers parsed in C by :func:`numpy.fromstring`, and modal values carried forward to
each move with :func:`numpy.searchsorted`. Anything outside that narrow, common subset makes
:func:`fast_chunk` return ``None`` and the chunk goes through the line-by-line reference path,
which also produces the precise error messages. The tests check both paths agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from laserd.gcode.dialect import MAX_LINE_CHARS
from laserd.gcode.interp import ModalState
from laserd.gcode.numbers import parse_numbers
from laserd.gcode.segments import Segments

# Only literal-led patterns are fast in ``re``; shape checks are bytes and numpy passes.
_COMMENTS = re.compile(rb"\([^)\n]*\)?|;[^\n]*")
_UPPER = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_FAST_CHARS = b"GMXYFS0123456789.-\n"
_LETTERS_TO_SPACE = bytes.maketrans(b"GMXYFS", b"      ")
_G, _M, _X, _Y, _F, _S = (ord(c) for c in "GMXYFS")

# Modal group of each G code the fast path accepts (0: not accepted here).
_G_GROUP = np.zeros(100, dtype=np.int16)
_G_GROUP[[0, 1]] = 1
_G_GROUP[17], _G_GROUP[21], _G_GROUP[40], _G_GROUP[49] = 2, 3, 4, 5
_G_GROUP[54:60] = 6
_G_GROUP[61], _G_GROUP[90], _G_GROUP[94] = 7, 8, 9
_M_GROUP = np.zeros(10, dtype=np.int16)
_M_GROUP[[3, 4, 5]] = 10
_M_GROUP[[7, 8, 9]] = 11
# One bit per kind of word (value letters and the G/M groups above) for the repeat check.
_GROUP_BIT = np.zeros(128, dtype=np.int32)
for _bit, _kind in enumerate([_F, _S, _X, _Y, *range(1, 12)]):
    _GROUP_BIT[_kind] = 1 << _bit


_EMPTY_I = np.zeros(0, dtype=np.int64)
#: Words a line may hold for the look-back repeat check (longer lines: one pass per line).
_LOOK_BACK = 6


@dataclass(slots=True)
class FastResult:
    text: bytes
    lines: int
    segments: Segments
    state: ModalState
    line_bytes: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    sync_lines: np.ndarray = field(default_factory=lambda: _EMPTY_I)  # spindle/coolant changes
    s_lines: np.ndarray = field(default_factory=lambda: _EMPTY_I)  # S changes, laser on


def _strip_semicolon_comments(raw: bytes) -> bytes:
    """Drop ``;`` comments (to the end of their line) without a per-byte regex scan.

    After each ``;`` the text is comment up to its newline; a piece without a newline was
    entirely inside the comment that an earlier ``;`` opened.
    """
    parts = raw.split(b";")
    out = [parts[0]]
    for part in parts[1:]:
        cut = part.find(b"\n")
        if cut >= 0:
            out.append(part[cut:])
    return b"".join(out)


def _carry(
    tok_lines: np.ndarray, tok_vals: np.ndarray, at: np.ndarray, before: float, nlines: int
) -> np.ndarray:
    """For each line in ``at``, the value of the last token at or before it (else ``before``)."""
    if tok_lines.size == 0:
        return np.full(at.shape, before, dtype=np.float64)
    if tok_lines.size == at.size and np.array_equal(tok_lines, at):
        # A word on every line asked about (X on a raster): its own values.
        return tok_vals.astype(np.float64, copy=False)
    if tok_lines.size * 16 < nlines:
        # Few tokens (M3/M5, G0/G1, F on a raster): a binary search in them is cheaper than a
        # pass over every line. (Token lines are in order; a kind repeats at most once a line.)
        idx = np.searchsorted(tok_lines, at, side="right") - 1
    else:
        last = np.full(nlines, -1, dtype=np.int64)
        last[tok_lines] = np.arange(tok_lines.size)
        np.maximum.accumulate(last, out=last)
        idx = last[at]
    out: np.ndarray = tok_vals[np.maximum(idx, 0)].astype(np.float64)
    out[idx < 0] = before
    return out


def _repeats_a_kind(tline: np.ndarray, group: np.ndarray) -> bool:
    """Whether a line holds two words of one kind (``group``: the letter, or the G/M group).

    Words of a line are consecutive, so comparing each word with the ones 1, 2, … places
    before it finds a repeat; the look-back stops at the longest line (a few words). Lines of
    many words are checked per line instead: the sum of one bit per kind differs from their
    OR exactly when one repeats.
    """
    for back in range(1, _LOOK_BACK + 1):
        same_line = tline[back:] == tline[:-back]
        if not same_line.any():
            return False
        if (same_line & (group[back:] == group[:-back])).any():
            return True
    bits = _GROUP_BIT[group]
    line_first = np.flatnonzero(np.diff(tline, prepend=-1))
    return bool(
        (np.add.reduceat(bits, line_first) != np.bitwise_or.reduceat(bits, line_first)).any()
    )


def fast_chunk(raw: bytes, state: ModalState, rapid_mm_min: float) -> FastResult | None:
    """Evaluate complete lines ``raw`` (each ending in ``\\n``), or ``None`` if not plain."""
    if state.motion not in (0, 10) or not state.absolute or state.inches:
        return None
    # Comments go first (the reference path reports nothing inside comments either).
    if b"(" in raw:
        raw = _COMMENTS.sub(b"", raw)
    elif b";" in raw:
        raw = _strip_semicolon_comments(raw)
    # Raster G-code is usually plain already (upper case, no blanks): then the normalising
    # copy is not needed. (A blank shows at once; the full check only runs without one.)
    if b" " not in raw and not raw.translate(None, _FAST_CHARS):
        norm = raw
    else:
        if b"\r" in raw and raw.count(b"\r") != raw.count(b"\r\n"):
            return None
        norm = raw.translate(_UPPER, b" \t\r")
        if norm.translate(None, _FAST_CHARS):
            return None
    arr = np.frombuffer(norm, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    line_bytes = np.diff(nl, prepend=-1)
    if nl.size and int(line_bytes.min()) == 1:  # blank lines (or only spaces and comments)
        while b"\n\n" in norm:
            norm = norm.replace(b"\n\n", b"\n")
        if norm.startswith(b"\n"):
            norm = norm[1:]
        arr = np.frombuffer(norm, dtype=np.uint8)
        nl = np.flatnonzero(arr == 10)
        line_bytes = np.diff(nl, prepend=-1)
    if not norm:
        return FastResult(b"", 0, Segments.empty(), state.copy())
    # Shape checks: lines start with a letter and fit GRBL's buffer; every letter is followed
    # by a number with a digit, at most one dot, and a minus sign only right after the letter.
    if not (65 <= norm[0] <= 90):
        return None
    if int(line_bytes.max()) > MAX_LINE_CHARS + 1:
        return None
    if (arr[nl[:-1] + 1] < 65).any():  # a line not starting with a letter
        return None
    is_letter = arr >= 65
    lpos = np.flatnonzero(is_letter)
    nxt = arr[lpos + 1]
    if not (((nxt >= 48) & (nxt <= 57)) | (nxt == 45) | (nxt == 46)).all():
        return None
    minus = np.flatnonzero(arr == 45)
    if minus.size and (arr[minus - 1] < 65).any():
        return None
    # A body of one or two bytes must hold a digit ("-", ".", "-." do not).
    # (Indices stay in range: every body is followed by at least a newline.)
    after = arr[lpos + 2]
    if ((nxt < 48) & ((after >= 65) | (after == 10))).any():
        return None
    minus_dot = lpos[(nxt == 45) & (after == 46)]
    if minus_dot.size:
        third = arr[minus_dot + 3]
        if ((third >= 65) | (third == 10)).any():
            return None
    # Each number runs from after its letter to the next letter or the line's end.
    stop = np.empty_like(lpos)
    stop[:-1] = lpos[1:]
    stop[-1] = arr.shape[0]
    stop -= arr[stop - 1] == 10
    try:
        vals = parse_numbers(norm, lpos + 1, stop - lpos - 1)
    except ValueError:  # a number with two dots: the reference path says where
        return None
    if vals is None:  # many numbers longer than eight characters
        # Two dots in one number become adjacent once digits and signs are gone.
        if b".." in norm.translate(None, b"0123456789-"):
            return None
        vals = np.fromstring(norm.translate(_LETTERS_TO_SPACE), dtype=np.float64, sep=" ")
        if vals.shape[0] != lpos.shape[0]:
            return None
    letters = arr[lpos]
    # Every line starts with a letter, so a token opens a line when the byte before it is a
    # newline (for the very first token, arr[-1] is the chunk's final newline).
    tline = np.cumsum(arr[lpos - 1] == 10) - 1

    group = letters.astype(np.int16)
    is_g = letters == _G
    is_m = letters == _M
    if is_g.any():
        gv = vals[is_g]
        gi = gv.astype(np.int64)
        if not ((gi == gv) & (gi >= 0) & (gi < 100)).all():
            return None
        gg = _G_GROUP[gi]
        if not gg.all():
            return None
        group[is_g] = gg
    if is_m.any():
        mv = vals[is_m]
        mi = mv.astype(np.int64)
        if not ((mi == mv) & (mi >= 0) & (mi < 10)).all():
            return None
        mg = _M_GROUP[mi]
        if not mg.all():
            return None
        group[is_m] = mg
    # Two words of one kind on a line (GRBL refuses them; the reference path says which).
    if _repeats_a_kind(tline, group):
        return None

    is_f = letters == _F
    is_s = letters == _S
    fv = vals[is_f]
    sv = vals[is_s]
    if (fv <= 0).any() or (sv < 0).any():
        return None
    is_motion = group == 1
    mot_lines = tline[is_motion]
    mot_codes = np.where(vals[is_motion] == 1, 10, 0)
    is_x = letters == _X
    is_y = letters == _Y
    x_lines, y_lines, s_lines = tline[is_x], tline[is_y], tline[is_s]
    nlines = int(tline[-1]) + 1  # every line holds at least one word
    has_xy = np.zeros(nlines, dtype=bool)
    has_xy[x_lines] = True
    has_xy[y_lines] = True
    move_lines = np.flatnonzero(has_xy)
    f_lines = tline[is_f]

    mode = _carry(mot_lines, mot_codes, move_lines, state.motion, nlines)
    for feed_needed in (mot_lines[mot_codes == 10], move_lines[mode == 10]):
        if feed_needed.size:
            feed_at = _carry(f_lines, fv, feed_needed, state.feed_mm_min, nlines)
            if (feed_at <= 0).any():
                return None

    new = state.copy()
    sp_tok = is_m & (group == 10)
    cool_tok = is_m & (group == 11)
    spv = vals[sp_tok]
    coolv = vals[cool_tok]
    sp_lines = tline[sp_tok]
    # Spindle or coolant changes empty GRBL's planner (even in laser mode).
    sp_changed = sp_lines[spv != np.concatenate(([state.spindle], spv[:-1]))]
    cool_changed = tline[cool_tok][coolv != np.concatenate(([state.coolant], coolv[:-1]))]
    # (Each is sorted and unique: one word of a group a line. numpy's union1d costs ~0.1 ms
    # even for empty arrays, so it is kept for the rare chunk that changes both.)
    if sp_changed.size and cool_changed.size:
        sync_lines = np.union1d(sp_changed, cool_changed)
    else:
        sync_lines = sp_changed if sp_changed.size else cool_changed
    sync_lines = sync_lines.astype(np.int64, copy=False)
    # S changes while the laser is on (they empty the planner only without laser mode).
    s_changed = s_lines[sv != np.concatenate(([state.s], sv[:-1]))]
    if s_changed.size:
        sp_at = _carry(sp_lines, spv, s_changed, float(state.spindle), nlines)
        s_changed = s_changed[sp_at != 5]
    if move_lines.size:
        x1 = _carry(x_lines, vals[is_x], move_lines, state.x, nlines)
        y1 = _carry(y_lines, vals[is_y], move_lines, state.y, nlines)
        s_at = _carry(s_lines, sv, move_lines, state.s, nlines)
        spindle = _carry(sp_lines, spv, move_lines, float(state.spindle), nlines)
        feed = _carry(f_lines, fv, move_lines, state.feed_mm_min, nlines)
        rapid = mode == 0
        x0 = np.empty_like(x1)
        y0 = np.empty_like(y1)
        x0[0], y0[0] = state.x, state.y
        x0[1:], y0[1:] = x1[:-1], y1[:-1]
        power = np.where(rapid | (spindle == 5), 0.0, s_at)
        feed = np.where(rapid, rapid_mm_min, feed)
        z1 = np.full(x1.shape, state.z)
        segments = Segments(
            x0, y0, x1, y1, power, rapid, feed, z1, move_lines.astype(np.int64), spindle == 3
        )
        new.x, new.y = float(x1[-1]), float(y1[-1])
    else:
        segments = Segments.empty()
    if mot_codes.size:
        new.motion = int(mot_codes[-1])
    if fv.size:
        new.feed_mm_min = float(fv[-1])
    if sv.size:
        new.s = float(sv[-1])
    if spv.size:
        new.spindle = int(spv[-1])
    if coolv.size:
        new.coolant = int(coolv[-1])
    return FastResult(norm, nlines, segments, new, line_bytes, sync_lines, s_changed)
