"""DXF → raw paths in mm, through ezdxf.

Read entities: LINE, LWPOLYLINE (with bulges), POLYLINE, ARC, CIRCLE, ELLIPSE, SPLINE, and
INSERT (block references, nested, with their transforms and MINSERT arrays). Each entity is
turned into an ezdxf path and flattened within half the tolerance, then simplified within
the other half (see :mod:`laserd.designs.flatten`). ``$INSUNITS`` gives the drawing unit
(unitless drawings are taken as millimetres, with a warning). TEXT and MTEXT are skipped with
a warning naming them; other entity types are counted in a warning.

One layer per DXF layer name, in the layer's colour (true colour, else its ACI colour). As
in CAD, entities drawn on layer ``0`` inside a block take the layer of the INSERT that
places them. Layers that are off or frozen are skipped.

A DXF has no page: the drawing's extent is its page, moved so that its lower-left corner is
at the origin (the bed's corner unless the file is placed elsewhere).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path as FsPath
from typing import Any

import ezdxf
import numpy as np
from ezdxf import colors as dxf_colors
from ezdxf import path as dxf_path
from ezdxf import recover as dxf_recover
from ezdxf import units as dxf_units

from laserd.designs.errors import DesignError
from laserd.designs.flatten import simplify
from laserd.designs.layers import RawDesign, RawPath

_CURVES = {"LINE", "LWPOLYLINE", "POLYLINE", "ARC", "CIRCLE", "ELLIPSE", "SPLINE"}
_TEXT = {"TEXT", "MTEXT", "ATTRIB", "ATTDEF"}
#: Polylines may hold runs of nearly collinear points worth merging; ezdxf's flattening of
#: arcs, ellipses and splines is adaptive already, so simplifying them gains nothing.
_REDUCIBLE = {"LWPOLYLINE", "POLYLINE"}
#: Nesting deeper than this is taken as a reference cycle.
MAX_BLOCK_DEPTH = 16
MAX_ENTITIES = 500_000


def read_dxf(src: FsPath, tolerance_mm: float) -> RawDesign:
    """Parse the DXF at ``src`` into raw paths in mm (Y up, extents' corner at the origin)."""
    doc = _open(FsPath(src))
    raw = RawDesign()
    scale = _mm_per_unit(doc, raw.warnings)
    layer_info = _layers(doc)
    texts: list[str] = []
    skipped: Counter[str] = Counter()
    hidden: set[str] = set()
    flat_tol = tolerance_mm / 2.0 / scale  # in drawing units
    count = 0
    for entity, layer in _entities(doc.modelspace(), None, 0):
        count += 1
        if count > MAX_ENTITIES:
            raise DesignError(f"the DXF has more than {MAX_ENTITIES} entities")
        kind = entity.dxftype()
        color, visible = layer_info.get(layer, ("#000000", True))
        if not visible:
            hidden.add(layer)
            continue
        if kind in _TEXT:
            text = _text_of(entity)
            texts.append(f"{kind} {text[:40]!r} on {layer}" if text else f"{kind} on {layer}")
            continue
        if kind not in _CURVES:
            skipped[kind] += 1
            continue
        try:
            p = dxf_path.make_path(entity)
        except (TypeError, ValueError, ZeroDivisionError) as exc:
            raw.warnings.append(f"{kind} on {layer} cannot be read: {exc}")
            continue
        for sub in p.sub_paths() if p.has_sub_paths else [p]:
            pts = np.array([(v.x, v.y) for v in sub.flattening(flat_tol, segments=4)])
            if len(pts) < 2:
                continue
            closed = bool(sub.is_closed) or kind == "CIRCLE"
            mm = pts * scale
            if kind in _REDUCIBLE:
                mm = simplify(mm, tolerance_mm / 2.0, closed)
            if len(mm) < 2:
                continue
            raw.paths.append(RawPath(mm, closed, color, None, 0.0, "nonzero",
                                     f"{kind} on {layer}", layer_name=layer))  # fmt: skip
    raw.warnings += _skipped_warnings(texts, skipped, hidden)
    _to_origin(raw)
    return raw


def _mm_per_unit(doc: Any, warnings: list[str]) -> float:
    """Millimetres per drawing unit, from ``$INSUNITS`` (unitless or unknown: read as mm)."""
    insunits = int(doc.header.get("$INSUNITS", 0) or 0)
    if insunits == 0:
        warnings.append("the DXF does not say its units ($INSUNITS); read as millimetres")
        return 1.0
    try:
        units = dxf_units.InsertUnits(insunits)
        return float(dxf_units.conversion_factor(units, dxf_units.InsertUnits.Millimeters))
    except (KeyError, ValueError, IndexError):
        warnings.append(f"unknown DXF unit code {insunits}; read as millimetres")
        return 1.0


def _skipped_warnings(texts: list[str], skipped: Counter[str], hidden: set[str]) -> list[str]:
    """What the drawing holds that is not burned: text, other entities, hidden layers."""
    warnings = []
    if texts:
        shown = ", ".join(texts[:5]) + (f" and {len(texts) - 5} more" if len(texts) > 5 else "")
        warnings.append(f"text skipped (convert text to paths): {shown}")
    if skipped:
        warnings.append("entities not burned: " + ", ".join(
            f"{n} {kind}" for kind, n in sorted(skipped.items())))  # fmt: skip
    if hidden:
        names = ", ".join(sorted(hidden))
        warnings.append(f"layers that are off or frozen are skipped: {names}")
    return warnings


def _open(src: FsPath) -> Any:
    """The document, audited. The strict reader is tried first (about 2.5× faster on large
    drawings); a file it refuses goes through ezdxf's recovering reader."""
    try:
        doc = ezdxf.readfile(str(src))
        auditor = doc.audit()
    except OSError as exc:
        raise DesignError(f"the DXF cannot be read: {exc}") from exc
    except Exception:  # damaged input raises many types in the strict reader: try recovery
        doc, auditor = _recover(src)
    if auditor.has_errors:
        errors = "; ".join(str(e.message) for e in auditor.errors[:3])
        raise DesignError(f"the DXF is damaged: {errors}")
    return doc


def _recover(src: FsPath) -> tuple[Any, Any]:
    try:
        return dxf_recover.readfile(str(src))
    except OSError as exc:
        raise DesignError(f"the DXF cannot be read: {exc}") from exc
    except ezdxf.DXFStructureError as exc:
        raise DesignError(f"the file is not a valid DXF: {exc}") from exc
    except Exception as exc:  # ezdxf raises many types on damaged input; all mean "unreadable"
        raise DesignError(f"the DXF cannot be read ({type(exc).__name__}: {exc})") from exc


def _layers(doc: Any) -> dict[str, tuple[str, bool]]:
    out: dict[str, tuple[str, bool]] = {}
    for layer in doc.layers:
        name = layer.dxf.name
        if layer.rgb is not None:
            r, g, b = layer.rgb
        else:
            aci = abs(int(layer.dxf.get("color", 7)))
            r, g, b = dxf_colors.aci2rgb(aci if 1 <= aci <= 255 else 7)
        visible = not (layer.is_off() or layer.is_frozen())
        out[name] = (f"#{r:02x}{g:02x}{b:02x}", visible)
    return out


def _entities(space: Any, parent_layer: str | None, depth: int) -> Iterator[tuple[Any, str]]:
    """Every drawable entity with its effective layer, block references expanded."""
    if depth > MAX_BLOCK_DEPTH:
        raise DesignError("the DXF nests blocks too deeply (a block that contains itself?)")
    for e in space:
        layer = e.dxf.get("layer", "0")
        if layer == "0" and parent_layer is not None:
            layer = parent_layer
        if e.dxftype() == "INSERT":
            inserts = e.multi_insert() if e.mcount > 1 else [e]
            for ins in inserts:
                try:
                    virtual = list(ins.virtual_entities())
                except (ezdxf.DXFError, ValueError, ZeroDivisionError, KeyError) as exc:
                    name = e.dxf.get("name", "?")
                    raise DesignError(f"block {name!r} cannot be expanded: {exc}") from exc
                yield from _entities(virtual, layer, depth + 1)
            continue
        yield e, layer


def _text_of(entity: Any) -> str:
    try:
        if entity.dxftype() == "MTEXT":
            return str(entity.plain_text()).strip()
        return str(entity.dxf.get("text", "")).strip()
    except (AttributeError, ValueError):
        return ""


def _to_origin(raw: RawDesign) -> None:
    if not raw.paths:
        return
    allp = np.vstack([p.points for p in raw.paths])
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    for p in raw.paths:
        p.points = p.points - lo
    raw.width_mm, raw.height_mm = float(hi[0] - lo[0]), float(hi[1] - lo[1])
