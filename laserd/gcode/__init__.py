"""GRBL 1.1 G-code: validation, analysis, normalisation (see :mod:`laserd.gcode.dialect`).

Public surface: :func:`analyse_gcode` and its :class:`GcodeReport`, :class:`GcodeError` with
its :class:`Issue` list, and :class:`ProgramReader` for other consumers of a file's toolpath
(the preview renderer).
"""

from laserd.gcode.analyse import GcodeReport, analyse_gcode
from laserd.gcode.dialect import MAX_ISSUES, MAX_LINE_CHARS
from laserd.gcode.errors import GcodeError, Issue
from laserd.gcode.program import ProgramReader
from laserd.gcode.segments import MotionStats, Segments

__all__ = [
    "MAX_ISSUES",
    "MAX_LINE_CHARS",
    "GcodeError",
    "GcodeReport",
    "Issue",
    "MotionStats",
    "ProgramReader",
    "Segments",
    "analyse_gcode",
]
