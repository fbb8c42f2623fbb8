"""Vector designs: SVG and DXF → geometry → layers → placement → plan → G-code.

Each stage is a pure function over plain data (:mod:`laserd.designs.geometry`) and is tested
alone; :mod:`laserd.designs.convert` chains them for the processing worker. Code that makes a
design without a file (the material test grid) builds a :class:`Design` of :class:`Path` and
:class:`~laserd.schemas.designs.LayerSettings` and calls :func:`design_to_gcode`.
"""

from laserd.designs.convert import DesignReport, convert_file, design_to_gcode, read_design
from laserd.designs.errors import DesignError
from laserd.designs.geometry import Design, ImageItem, Path

__all__ = [
    "Design",
    "DesignError",
    "DesignReport",
    "ImageItem",
    "Path",
    "convert_file",
    "design_to_gcode",
    "read_design",
]
