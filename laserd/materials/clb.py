"""LightBurn ``.clb`` material libraries: the format, and import (hostile files refused).

The format (XML, undocumented by its maker; learnt from libraries in the wild)::

    <LightBurnLibrary DisplayName="…">
      <Material name="Birch plywood">
        <Entry Thickness="3.0000" Desc="Cut" NoThickTitle="Cut">     (-1: no thickness)
          <CutSetting type="Cut">                       (Cut | Scan | Scan+Cut; images:
            <speed Value="5"/>                            CutSetting_Img type="Image")
            <maxPower Value="100"/> …                   (a field at its default is absent)

Mapping (one ``Entry`` ↔ one laserd material, ``Material`` name ↔ its name):

- ``Cut`` → ``cut`` (``score`` when the entry's ``Desc`` ends in ``[score]``: LightBurn has no
  separate score mode), ``Scan`` → ``fill``, ``Scan+Cut`` → ``fill`` and ``cut`` with the same
  values, ``Image`` → ``image``.
- ``speed`` mm/s × 60 → ``speed_mm_min``; ``maxPower`` → ``power_pct`` (images: ``minPower`` →
  ``power_min_pct``, ``maxPower`` → ``power_max_pct``); ``numPasses`` → ``passes``;
  ``runBlower`` → ``air_assist``; ``kerf`` → ``kerf_mm``; ``tabCount``/``tabSize`` → ``tabs``
  (only when the layer's tabs are enabled); ``interval``, ``angle``, ``crossHatch``, ``bidir``,
  ``overscan`` → ``fill`` (images: ``interval`` or ``dpi``, ``ditherMode``, ``bidir``,
  ``overscan``, ``negativeImage``).
- Anything else is counted in the import's ``ignored_fields`` (``minPower`` of a vector layer,
  Z offsets, galvo and fibre timings, …). An entry that cannot be mapped is skipped with its
  reason; the rest of the file still imports.

Export (:mod:`laserd.materials.clb_export`) writes every laserd material as one ``Entry`` per
operation; when a material has more than one operation, or a ``score`` (which LightBurn cannot
tell from a cut), ``Desc`` carries a ``[cut]``/``[score]``/``[fill]``/``[image]`` suffix and
import groups such entries back into one material, so ``.clb`` → laserd → ``.clb`` → laserd
keeps every mapped field.

Hostile files: the parser is the standard library's expat driven directly, with any DOCTYPE
refused (so no entity can be declared: no "billion laughs", no external entities), after a
byte pre-scan that refuses a DOCTYPE or ENTITY and an oversized file before parsing starts;
nesting depth and element count are capped while parsing. ``defusedxml`` was not used: it is
one more dependency and caps neither depth nor size, which this parser needs anyway.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn
from xml.parsers import expat

from pydantic import ValidationError

from laserd.materials.model import MaterialSettings, Operation

MAX_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 12  # LightBurnLibrary/Material/Entry/CutSetting/field is 5 deep
MAX_ELEMENTS = 400_000
MAX_ENTRIES = 10_000
MAX_NAME = 200
MAX_DESCRIPTION = 5000

#: LightBurn's values for a field that is absent (its defaults for a new layer).
DEFAULTS: dict[str, float] = {
    "speed": 100.0,
    "maxPower": 20.0,
    "minPower": 10.0,
    "numPasses": 1.0,
    "runBlower": 1.0,
    "kerf": 0.0,
    "interval": 0.1,
    "angle": 0.0,
    "crossHatch": 0.0,
    "bidir": 1.0,
    "overscan": 0.0,
    "tabCount": 1.0,
    "tabSize": 0.5,
    "enableTabs": 0.0,
    "negativeImage": 0.0,
}
#: Fields read for vector operations and for images.
VECTOR_FIELDS = frozenset(
    {
        "speed",
        "maxPower",
        "numPasses",
        "runBlower",
        "kerf",
        "tabCount",
        "tabSize",
        "enableTabs",
        "tabsEnabled",
        "interval",
        "angle",
        "crossHatch",
        "bidir",
        "overscan",
    }
)
IMAGE_FIELDS = frozenset(
    {
        "speed",
        "maxPower",
        "minPower",
        "numPasses",
        "runBlower",
        "interval",
        "dpi",
        "ditherMode",
        "bidir",
        "overscan",
        "negativeImage",
    }
)
#: Bookkeeping fields LightBurn always writes; they carry no setting.
QUIET_FIELDS = frozenset(
    {"index", "name", "LinkPath", "priority", "maxPower2", "minPower2", "tabCountMax", "subname"}
)
#: LightBurn dither modes ↔ laserd's (LightBurn calls Floyd–Steinberg plain "dither").
DITHER_FROM_LB = {
    "threshold": "threshold",
    "ordered": "ordered",
    "dither": "floyd_steinberg",
    "atkinson": "atkinson",
    "jarvis": "jarvis",
    "stucki": "stucki",
    "sierra": "sierra",
    "grayscale": "grayscale",
}
DITHER_TO_LB = {v: k for k, v in DITHER_FROM_LB.items()}
_MARK = re.compile(r"\s*\[(cut|score|fill|image)\]\s*$")


class ClbError(ValueError):
    """The file as a whole is not a library laserd will read (a sentence for the user)."""


# ---------------------------------------------------------------------------- safe parsing


@dataclass(slots=True)
class Node:
    tag: str
    attrib: dict[str, str]
    children: list[Node] = field(default_factory=list)


def _refuse_doctype(*_args: Any) -> NoReturn:
    raise ClbError("The file declares a DOCTYPE; a LightBurn library never does.")


def _refuse_entity(*_args: Any) -> NoReturn:
    raise ClbError("The file declares XML entities; a LightBurn library never does.")


def parse_xml(data: bytes) -> Node:
    """The document as a tree of :class:`Node`, or :class:`ClbError` for anything hostile."""
    if len(data) > MAX_BYTES:
        raise ClbError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    # Pre-scan: refuses the classic attacks before the parser sees a byte (UTF-16 files slip
    # past this, and meet the same refusal in the parser's DOCTYPE handler).
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ClbError("The file declares a DOCTYPE or entities; a LightBurn library never does.")
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.UnparsedEntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_entity
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    root: list[Node] = []
    stack: list[Node] = []
    count = 0

    def start(tag: str, attrib: dict[str, str]) -> None:
        nonlocal count
        count += 1
        if count > MAX_ELEMENTS:
            raise ClbError(f"The file has more than {MAX_ELEMENTS} elements.")
        if len(stack) >= MAX_DEPTH:
            raise ClbError(f"The file is nested deeper than {MAX_DEPTH} levels.")
        node = Node(tag, attrib)
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)

    def end(_tag: str) -> None:
        stack.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ClbError(f"The file is not well-formed XML: {exc}.") from None
    if not root:
        raise ClbError("The file holds no XML element.")
    return root[0]


# ---------------------------------------------------------------------------- import


@dataclass(slots=True)
class ImportOutcome:
    items: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    ignored_fields: Counter[str] = field(default_factory=Counter)


class _Skip(Exception):
    pass


def _clean(text: str, limit: int) -> str:
    """One line of printable text (control and format characters dropped), bounded."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if ch.isspace() else ch for ch in text)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    return " ".join(text.split())[:limit]


def _number(values: dict[str, str], key: str) -> float:
    raw = values.get(key)
    if raw is None:
        return DEFAULTS[key]
    try:
        value = float(raw)
    except ValueError:
        raise _Skip(f"{key} is not a number ({raw[:20]!r})") from None
    if not math.isfinite(value):
        raise _Skip(f"{key} is not a finite number")
    return value


def _flag(values: dict[str, str], key: str) -> bool:
    return _number(values, key) != 0


def _speed(values: dict[str, str]) -> float:
    # Rounded: mm/s written with 10 significant digits comes back within 1e-7 mm/min.
    return round(_number(values, "speed") * 60, 4)


def _vector(values: dict[str, str]) -> dict[str, Any]:
    if _number(values, "kerf") < 0:
        raise _Skip(
            "a negative kerf offset has no equivalent here (laserd's kerf is the cut width)"
        )
    tabs_on = _flag(values, "enableTabs") or values.get("tabsEnabled", "0") not in ("0", "")
    return {
        "speed_mm_min": _speed(values),
        "power_pct": _number(values, "maxPower"),
        "passes": int(_number(values, "numPasses")),
        "air_assist": _flag(values, "runBlower"),
        "kerf_mm": _number(values, "kerf"),
        "tabs": {
            "count": int(_number(values, "tabCount")) if tabs_on else 0,
            "width_mm": _number(values, "tabSize"),
        },
        "fill": {
            "interval_mm": _number(values, "interval"),
            "angle_deg": _number(values, "angle"),
            "crosshatch": _flag(values, "crossHatch"),
            "bidirectional": _flag(values, "bidir"),
            "overscan_mm": _number(values, "overscan"),
        },
    }


def _image(values: dict[str, str]) -> dict[str, Any]:
    mode = values.get("ditherMode", "threshold")
    dither = DITHER_FROM_LB.get(mode.lower())
    if dither is None:
        raise _Skip(f"image mode {mode[:30]!r} has no equivalent here")
    if "interval" in values:
        interval = _number(values, "interval")
    elif "dpi" in values:
        dpi = _number(values, "dpi")
        if dpi <= 0:
            raise _Skip("dpi must be positive")
        interval = round(25.4 / dpi, 6)
    else:
        interval = DEFAULTS["interval"]
    return {
        "power_min_pct": _number(values, "minPower"),
        "power_max_pct": _number(values, "maxPower"),
        "speed_mm_min": _speed(values),
        "passes": int(_number(values, "numPasses")),
        "air_assist": _flag(values, "runBlower"),
        "line_interval_mm": interval,
        "dither": dither,
        "bidirectional": _flag(values, "bidir"),
        "overscan_mm": _number(values, "overscan"),
        "invert": _flag(values, "negativeImage"),
    }


def _problem(exc: ValidationError) -> str:
    e = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in e["loc"])
    msg = e["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def _entry_ops(
    entry: Node, desc_op: Operation | None, ignored: Counter[str]
) -> dict[str, dict[str, Any]]:
    ops: dict[str, dict[str, Any]] = {}
    settings = [c for c in entry.children if c.tag in ("CutSetting", "CutSetting_Img")]
    if not settings:
        raise _Skip("the entry holds no CutSetting")
    for cs in settings:
        kind = cs.attrib.get("type", "Image" if cs.tag == "CutSetting_Img" else "").lower()
        values = {c.tag: c.attrib.get("Value", "") for c in cs.children}
        if kind == "cut":
            targets = [Operation.score if desc_op is Operation.score else Operation.cut]
        elif kind == "scan":
            targets = [Operation.fill]
        elif kind == "scan+cut":
            targets = [Operation.fill, Operation.cut]
        elif kind == "image":
            targets = [Operation.image]
        else:
            raise _Skip(
                f"layer type {cs.attrib.get('type', '')[:30]!r} is not one laserd uses"
                " (Cut, Scan, Scan+Cut, Image)"
            )
        used = IMAGE_FIELDS if kind == "image" else VECTOR_FIELDS
        for name in values:
            if name not in used and name not in QUIET_FIELDS:
                ignored[name[:40]] += 1
        for op in targets:
            if op.value in ops:
                raise _Skip(f"two {op.value} settings in one entry")
            ops[op.value] = _image(values) if op is Operation.image else _vector(values)
    return ops


def _entries(root: Node) -> Iterator[tuple[str, Node]]:
    for material in root.children:
        if material.tag != "Material":
            continue
        name = material.attrib.get("name", material.attrib.get("Name", ""))
        for entry in material.children:
            if entry.tag == "Entry":
                yield name, entry


def import_library(data: bytes) -> ImportOutcome:
    """Materials from a ``.clb`` file: every entry that maps, and why the others did not.

    Runs in a worker thread (a library of thousands of entries takes a while on a Pi).
    """
    root = parse_xml(data)
    if root.tag != "LightBurnLibrary":
        raise ClbError(f"The file is not a LightBurn library (its root is <{root.tag[:40]}>).")
    out = ImportOutcome()
    grouped: dict[tuple[str, float | None, str], dict[str, Any]] = {}
    for n, (raw_name, entry) in enumerate(_entries(root)):
        name = _clean(raw_name, MAX_NAME)
        label = name or "(no name)"
        if n >= MAX_ENTRIES:
            out.skipped.append({"name": label, "reason": f"more than {MAX_ENTRIES} entries"})
            continue
        try:
            if not name:
                raise _Skip("the material has no name")
            desc = entry.attrib.get("Desc") or entry.attrib.get("NoThickTitle") or ""
            desc = _clean(desc, MAX_DESCRIPTION)
            mark = _MARK.search(desc)
            desc_op = Operation(mark.group(1)) if mark else None
            if mark:
                desc = desc[: mark.start()]
            label = f"{name} · {desc}" if desc else name
            thickness = _number({"t": entry.attrib.get("Thickness", "-1")}, "t")
            thickness_mm = None if thickness <= 0 else round(thickness, 4)
            if thickness_mm is not None and thickness_mm > 1000:
                raise _Skip("thickness is over 1000 mm")
            ops = _entry_ops(entry, desc_op, out.ignored_fields)
            try:
                settings = MaterialSettings.model_validate(ops).to_json()
            except ValidationError as exc:
                raise _Skip(_problem(exc)) from None
        except _Skip as why:
            out.skipped.append({"name": label, "reason": str(why)})
            continue
        key = (name, thickness_mm, desc)
        group = grouped.get(key) if mark else None
        if group is not None and not set(settings) & set(group["settings"]):
            group["settings"].update(settings)
            continue
        item = {
            "name": name,
            "thickness_mm": thickness_mm,
            "description": desc,
            "laser_type": None,
            "settings": settings,
        }
        if mark:
            grouped[key] = item
        out.items.append(item)
    return out
