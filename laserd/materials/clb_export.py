"""LightBurn ``.clb`` export: laserd materials as a library LightBurn opens.

The mapping is the import's, read backwards (:mod:`laserd.materials.clb` describes the format
and both directions): every laserd material becomes one ``Entry`` per operation, with a
``[cut]``/``[score]``/``[fill]``/``[image]`` suffix on ``Desc`` where import needs it to group
the entries back into one material.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from laserd.materials.clb import DITHER_TO_LB
from laserd.materials.model import ImageSettings, MaterialSettings, Operation, OperationSettings


def quoteattr(value: str) -> str:
    """An attribute value in double quotes, as LightBurn writes them (``"`` escaped too)."""
    return '"' + escape(value, {'"': "&quot;", "\n": "&#10;", "\t": "&#9;"}) + '"'


def _fmt(value: float) -> str:
    return format(value, ".10g")


def _thickness(value: float | None) -> str:
    if value is None:
        return "-1.0000"
    return f"{value:.4f}" if round(value, 4) == value else _fmt(value)


def _fields(values: list[tuple[str, str]], indent: str) -> list[str]:
    return [f"{indent}<{k} Value={quoteattr(v)}/>" for k, v in values]


def _vector_values(op: OperationSettings) -> list[tuple[str, str]]:
    out = [
        ("speed", _fmt(op.speed_mm_min / 60)),
        ("maxPower", _fmt(op.power_pct)),
        ("numPasses", str(op.passes)),
        ("runBlower", "1" if op.air_assist else "0"),
        ("kerf", _fmt(op.kerf_mm)),
        ("interval", _fmt(op.fill.interval_mm)),
        ("angle", _fmt(op.fill.angle_deg)),
        ("crossHatch", "1" if op.fill.crosshatch else "0"),
        ("bidir", "1" if op.fill.bidirectional else "0"),
        ("overscan", _fmt(op.fill.overscan_mm)),
        ("tabSize", _fmt(op.tabs.width_mm)),
    ]
    if op.tabs.count:
        out += [("enableTabs", "1"), ("tabCount", str(op.tabs.count))]
    return out


def _image_values(img: ImageSettings) -> list[tuple[str, str]]:
    return [
        ("speed", _fmt(img.speed_mm_min / 60)),
        ("maxPower", _fmt(img.power_max_pct)),
        ("minPower", _fmt(img.power_min_pct)),
        ("numPasses", str(img.passes)),
        ("runBlower", "1" if img.air_assist else "0"),
        ("interval", _fmt(img.line_interval_mm)),
        ("dpi", _fmt(round(25.4 / img.line_interval_mm, 3))),
        ("ditherMode", DITHER_TO_LB[img.dither.value]),
        ("bidir", "1" if img.bidirectional else "0"),
        ("overscan", _fmt(img.overscan_mm)),
        ("negativeImage", "1" if img.invert else "0"),
    ]


_TYPE = {
    Operation.cut: "Cut",
    Operation.score: "Cut",
    Operation.fill: "Scan",
    Operation.image: "Image",
}


def export_library(materials: list[dict[str, Any]], display_name: str = "laserd") -> bytes:
    """``materials``: store rows (``name``, ``thickness_mm``, ``description``, ``settings``)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for m in materials:
        by_name.setdefault(m["name"], []).append(m)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<LightBurnLibrary DisplayName={quoteattr(display_name)}>",
    ]
    for name in sorted(by_name, key=str.casefold):
        lines.append(f"    <Material name={quoteattr(name)}>")
        for m in by_name[name]:
            settings = MaterialSettings.model_validate(m["settings"])
            ops = settings.operations()
            for op in ops:
                desc = m["description"] or ""
                if len(ops) > 1 or op is Operation.score:
                    desc = f"{desc} [{op.value}]".strip()
                title = desc or op.value.capitalize()
                thickness = _thickness(m["thickness_mm"])
                lines.append(
                    f"        <Entry Thickness={quoteattr(thickness)} Desc={quoteattr(desc)}"
                    f" NoThickTitle={quoteattr(title)}>"
                )
                tag = "CutSetting_Img" if op is Operation.image else "CutSetting"
                lines.append(f'            <{tag} type="{_TYPE[op]}">')
                values: list[tuple[str, str]] = [
                    ("index", "0"),
                    ("name", op.value.capitalize()),
                    ("LinkPath", f"{name}/{title}/{desc}"),
                ]
                if op is Operation.image:
                    assert settings.image is not None
                    values += _image_values(settings.image)
                else:
                    values += _vector_values(getattr(settings, op.value))
                lines += _fields(values, " " * 16)
                lines.append(f"            </{tag}>")
                lines.append("        </Entry>")
        lines.append("    </Material>")
    lines.append("</LightBurnLibrary>")
    return ("\n".join(lines) + "\n").encode("utf-8")
