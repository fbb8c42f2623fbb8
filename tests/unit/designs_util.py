"""Shared helpers of the design tests: write an SVG, run the pipeline, replay the G-code."""

from __future__ import annotations

from pathlib import Path

from laserd.designs import convert_file
from laserd.designs.convert import DesignReport
from tests.unit.design_replay import Replay, replay

BED = (400.0, 300.0)
DATA = Path(__file__).resolve().parent.parent / "data" / "svg"


def svg_doc(body: str, *, width: str = "100mm", height: str = "100mm",
            viewbox: str = "0 0 100 100", extra: str = "") -> str:  # fmt: skip
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{width}" height="{height}" viewBox="{viewbox}" {extra}>{body}</svg>'
    )


def run_svg(
    tmp_path: Path, text: str, **kw: object
) -> tuple[DesignReport, Replay, str]:
    src = tmp_path / "d.svg"
    src.write_text(text)
    out = tmp_path / "d.gcode"
    kw.setdefault("bed_mm", BED)
    kw.setdefault("max_power_s", 1000)
    report = convert_file(src, "svg", out, **kw)  # type: ignore[arg-type]
    gcode = out.read_text()
    return report, replay(gcode), gcode
