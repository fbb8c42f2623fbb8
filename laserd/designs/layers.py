"""Group parsed shapes into layers by colour, with default operations.

The default operation of a new layer follows the conventions laser makers draw with:

- **Stroke layers** are ``cut`` when the colour is red-ish (red is "cut" in LightBurn,
  Glowforge and most maker-space templates: the red channel at least 0.5 and each other
  channel at most 0.4 of it) or when every stroke of the colour is a hairline (at most
  0.1 mm wide, the "hairline = cut" rule of laser-cutting services); any other stroke colour
  is ``score`` (a light mark: the safe guess when the intent is unknown).
- **Fill layers** are ``fill``, except white or near-white fills (nothing to burn on the
  usual material: every channel ≥ 0.94) and colours whose every shape also has a stroke
  (an outlined drawing; its outline is the work), which start ``off``.
- DXF layers are stroke layers: DXF lines have no width, so by the hairline rule they are
  ``cut``, except layers whose name says otherwise ("score", "engrave", "etch", "mark").
- Embedded images form one ``image`` layer.

Ids number the layers from 1 in order of first appearance, so re-reading the same file gives
the same ids and the user's per-layer settings stay attached to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from laserd.designs.geometry import Design, FillRule, ImageItem, Path
from laserd.schemas.designs import LayerSettings, Operation, layer_defaults

HAIRLINE_MM = 0.1
#: DXF layer names that mean "mark, do not cut".
_MARK_WORDS = ("score", "engrav", "etch", "mark")


@dataclass(slots=True)
class RawPath:
    """A flattened subpath with its paint, as a parser read it (mm, Y up)."""

    points: np.ndarray
    closed: bool
    stroke: str | None  # "#rrggbb" or None
    fill: str | None
    stroke_width_mm: float = 0.0
    fill_rule: FillRule = "nonzero"
    source: str = ""
    #: Set by parsers whose layers are named (DXF): groups by name instead of colour.
    layer_name: str | None = None


@dataclass(slots=True)
class RawDesign:
    paths: list[RawPath] = field(default_factory=list)
    images: list[ImageItem] = field(default_factory=list)  # ``layer`` is filled in here
    warnings: list[str] = field(default_factory=list)
    width_mm: float = 0.0
    height_mm: float = 0.0


def _rgb(color: str) -> tuple[float, float, float]:
    return int(color[1:3], 16) / 255, int(color[3:5], 16) / 255, int(color[5:7], 16) / 255


def is_reddish(color: str) -> bool:
    r, g, b = _rgb(color)
    return r >= 0.5 and g <= 0.4 * r and b <= 0.4 * r


def is_whiteish(color: str) -> bool:
    return min(_rgb(color)) >= 0.94


def stroke_operation(color: str, widths_mm: list[float]) -> Operation:
    if is_reddish(color) or (widths_mm and max(widths_mm) <= HAIRLINE_MM):
        return Operation.cut
    return Operation.score


def build_layers(raw: RawDesign) -> Design:
    """Assign every path a layer (one per stroke colour, per fill colour, per DXF layer)."""
    keys: dict[tuple[str, str], int] = {}
    info: dict[int, dict[str, object]] = {}
    paths: list[Path] = []

    def layer_for(kind: str, key: str, color: str) -> int:
        if (kind, key) not in keys:
            lid = len(keys) + 1
            keys[(kind, key)] = lid
            info[lid] = {"kind": kind, "color": color, "name": key, "widths": [], "stroked": True}
        return keys[(kind, key)]

    for rp in raw.paths:
        if rp.layer_name is not None:
            lid = layer_for("dxf", rp.layer_name, rp.stroke or "#000000")
            info[lid]["widths"].append(rp.stroke_width_mm)  # type: ignore[attr-defined]
            paths.append(Path(rp.points, rp.closed, lid, rp.fill_rule, rp.source))
            continue
        if rp.stroke is not None:
            lid = layer_for("stroke", rp.stroke, rp.stroke)
            info[lid]["widths"].append(rp.stroke_width_mm)  # type: ignore[attr-defined]
            paths.append(Path(rp.points, rp.closed, lid, rp.fill_rule, rp.source))
        if rp.fill is not None and rp.closed and len(rp.points) >= 3:
            lid = layer_for("fill", rp.fill, rp.fill)
            if rp.stroke is None:
                info[lid]["stroked"] = False
            paths.append(Path(rp.points, True, lid, rp.fill_rule, rp.source))
    images: list[ImageItem] = []
    if raw.images:
        lid = layer_for("image", "images", "#000000")
        images = [ImageItem(i.image, i.matrix, lid, i.source) for i in raw.images]

    layers: list[LayerSettings] = []
    for (kind, key), lid in keys.items():
        meta = info[lid]
        color = str(meta["color"])
        widths: list[float] = meta["widths"]  # type: ignore[assignment]
        if kind == "image":
            op, name = Operation.image, "Images"
        elif kind == "fill":
            op = Operation.off if is_whiteish(color) or meta["stroked"] else Operation.fill
            name = f"Fill {color}"
        elif kind == "dxf":
            marking = any(w in key.lower() for w in _MARK_WORDS)
            op, name = (Operation.score if marking else Operation.cut), key
        else:
            op, name = stroke_operation(color, widths), f"Stroke {color}"
        layers.append(layer_defaults(lid, op, color=color, name=name))
    return Design(paths, layers, images, list(raw.warnings), raw.width_mm, raw.height_mm)


def apply_layer_settings(design: Design, settings: list[LayerSettings] | None) -> Design:
    """Replace the default layers by the user's stored ones where the ids match.

    The colour and the id stay the file's; a stored layer whose id the file no longer has is
    dropped (the file was replaced), and a new layer of the file keeps its defaults.
    """
    if not settings:
        return design
    stored = {s.id: s for s in settings}
    layers = []
    for layer in design.layers:
        s = stored.get(layer.id)
        if s is None:
            layers.append(layer)
        else:
            layers.append(s.model_copy(update={"color": layer.color}))
    design.layers = layers
    return design
