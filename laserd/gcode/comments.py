"""Drop G-code comments from a byte stream block by block, in constant memory.

Real tools write long comments: PrusaSlicer and Cura put base64 thumbnails in ``;`` comment
blocks, and some laser tools write a whole picture as one ``;`` or ``( )`` comment line of
hundreds of kilobytes. None of it reaches the controller, so none of it may count against the
length limit of a line or be held in memory: :class:`CommentStripper` removes comments as the
blocks go by and keeps only whether the previous block ended inside one.

The rules are GRBL's (and the lexer's): ``(`` opens a comment that ends at ``)``, or, unclosed,
at the end of the line; ``;`` opens one that ends at the end of the line; whichever starts first
wins, so ``;`` inside ``( )`` and ``(`` after ``;`` are comment text. A line ends at ``\\n`` or
``\\r`` (GRBL ends a line at either); line ends are kept, so line numbers stay right.
"""

from __future__ import annotations

import re

#: A comment on a complete line: closed, or running to the line end (which it leaves).
_COMMENT = re.compile(rb"\([^)\r\n]*\)?|;[^\r\n]*")
_PAREN_END = re.compile(rb"[)\r\n]")
_LINE_END = re.compile(rb"[\r\n]")

#: Below one comment per this many bytes a loop over the comments beats one regex pass over
#: the block (the loop costs ~1 µs per comment, the regex ~20 ns per byte).
_LOOP_BELOW_ONE_COMMENT_IN = 100

#: States between blocks.
CODE, PAREN, SEMICOLON = 0, 1, 2


class CommentStripper:
    """``feed(block)`` returns the block without comments (line ends kept)."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = CODE

    def feed(self, block: bytes) -> bytes:
        start = 0
        if self.state == PAREN:
            m = _PAREN_END.search(block)
            if m is None:
                return b""
            # ``)`` belongs to the comment; a line end closes it and stays.
            start = m.end() if block[m.start()] == 0x29 else m.start()
        elif self.state == SEMICOLON:
            m = _LINE_END.search(block)
            if m is None:
                return b""
            start = m.start()
        self.state = CODE
        if start:
            block = block[start:]
        if b"(" not in block and b";" not in block:
            return block  # (a search stops at the first hit; counting reads everything)
        parens = block.count(b"(")
        semis = block.count(b";")
        if (parens + semis) * _LOOP_BELOW_ONE_COMMENT_IN > len(block):
            # Dense comments: one regex pass over the complete lines (no comment crosses a
            # line end), the loop only over the last, unfinished line.
            tail = max(block.rfind(b"\n"), block.rfind(b"\r")) + 1
            code, self.state = _strip(block, tail)
            return _COMMENT.sub(b"", block[:tail]) + code
        code, self.state = _strip_semicolons(block) if not parens else _strip(block, 0)
        return code


def _strip_semicolons(block: bytes) -> tuple[bytes, int]:
    """Without ``(``: after each ``;`` the text is comment up to its line end."""
    parts = block.split(b";")
    out = [parts[0]]
    for part in parts[1:]:
        cut = part.find(b"\n")
        if b"\r" in part:
            cr = part.find(b"\r")
            cut = cr if cut < 0 else min(cut, cr)
        if cut >= 0:
            out.append(part[cut:])
    # The last ';' opened a comment that the block's end cut off, unless its line ended.
    last = parts[-1]
    state = SEMICOLON if b"\n" not in last and b"\r" not in last else CODE
    return b"".join(out), state


def _strip(block: bytes, i: int) -> tuple[bytes, int]:
    """``block[i:]`` (which starts outside a comment) without its comments, and the state at
    its end: a loop over the comments, ``find`` at C speed between them."""
    out: list[bytes] = []
    n = len(block)
    semi = block.find(b";", i)
    paren = block.find(b"(", i)
    while True:
        if 0 <= semi < i:
            semi = block.find(b";", i)
        if 0 <= paren < i:
            paren = block.find(b"(", i)
        if semi < 0 and paren < 0:
            out.append(block[i:])
            return b"".join(out), CODE
        start = semi if paren < 0 or 0 <= semi < paren else paren
        out.append(block[i:start])
        if start == semi:
            m = _LINE_END.search(block, start)
            if m is None:
                return b"".join(out), SEMICOLON
            i = m.start()  # the line end stays
        else:
            m = _PAREN_END.search(block, start)
            if m is None:
                return b"".join(out), PAREN
            i = m.end() if block[m.start()] == 0x29 else m.start()
        if i >= n:
            return b"".join(out), CODE


def strip_comments(data: bytes) -> bytes:
    """The whole of ``data`` without comments (for tests and small texts)."""
    return CommentStripper().feed(data)
