"""DXF reading: every supported entity, blocks (nested, transformed), units, layers, text."""

from __future__ import annotations

import math
from pathlib import Path

import ezdxf
import numpy as np
import pytest

from laserd.designs import DesignError, convert_file, read_design
from laserd.schemas.designs import Operation
from tests.unit.design_replay import replay


def _doc(units: int = 4) -> ezdxf.document.Drawing:
    doc = ezdxf.new("R2010")
    doc.header["$INSUNITS"] = units
    doc.layers.add("CUT", color=1)
    doc.layers.add("Engrave lines", color=5)
    return doc


def _save(doc: ezdxf.document.Drawing, tmp_path: Path) -> Path:
    out = tmp_path / "d.dxf"
    doc.saveas(out)
    return out


def _radius_dev(pts: np.ndarray, cx: float, cy: float, r: float) -> float:
    return float(np.abs(np.hypot(pts[:, 0] - cx, pts[:, 1] - cy) - r).max())


def test_entities_units_and_layers(tmp_path: Path) -> None:
    doc = _doc()
    msp = doc.modelspace()
    msp.add_line((0, 0), (100, 0), dxfattribs={"layer": "CUT"})
    msp.add_circle((50, 50), 20, dxfattribs={"layer": "CUT"})
    msp.add_arc((50, 50), 30, 0, 90, dxfattribs={"layer": "CUT"})
    msp.add_ellipse((150, 50), major_axis=(20, 0), ratio=0.5, dxfattribs={"layer": "CUT"})
    msp.add_spline([(0, 100), (20, 130), (40, 90), (60, 120)], dxfattribs={"layer": "CUT"})
    msp.add_polyline2d([(0, 150), (30, 150), (30, 170)], close=True,
                       dxfattribs={"layer": "Engrave lines"})  # fmt: skip
    msp.add_text("Part 7", dxfattribs={"layer": "CUT"})
    msp.add_mtext("Notes", dxfattribs={"layer": "CUT"})
    msp.add_point((5, 5), dxfattribs={"layer": "CUT"})
    d = read_design(_save(doc, tmp_path), "dxf")
    assert [(lay.name, lay.color, lay.operation) for lay in d.layers] == [
        ("CUT", "#ff0000", Operation.cut),
        ("Engrave lines", "#0000ff", Operation.score),
    ]
    sources = sorted(p.source.split()[0] for p in d.paths)
    assert sources == ["ARC", "CIRCLE", "ELLIPSE", "LINE", "POLYLINE", "SPLINE"]
    assert any("TEXT 'Part 7'" in w and "MTEXT 'Notes'" in w for w in d.warnings)
    assert any("1 POINT" in w for w in d.warnings)
    # Moved so the extents start at the origin: the line at y = 0 from x = 0.
    assert d.bounds()[:2] == pytest.approx((0, 0))
    circle = next(p for p in d.paths if p.source.startswith("CIRCLE"))
    assert circle.closed and _radius_dev(circle.points, 50, 50, 20) <= 0.02
    arc = next(p for p in d.paths if p.source.startswith("ARC"))
    assert not arc.closed and _radius_dev(arc.points, 50, 50, 30) <= 0.02


def test_lwpolyline_bulges_are_arcs(tmp_path: Path) -> None:
    doc = _doc()
    # A 20 × 10 slot with semicircular ends: bulge 1 is a half circle.
    doc.modelspace().add_lwpolyline([(0, 0, 0), (20, 0, 1), (20, 10, 0), (0, 10, 1)],
                                    format="xyb", close=True,
                                    dxfattribs={"layer": "CUT"})  # fmt: skip
    d = read_design(_save(doc, tmp_path), "dxf")
    (slot,) = d.paths
    assert slot.closed
    assert d.bounds() == pytest.approx((0, 0, 30, 10), abs=0.02)
    right = slot.points[slot.points[:, 0] > 5 + 20]
    assert _radius_dev(right, 25, 5, 5) <= 0.02


def test_inches_are_converted(tmp_path: Path) -> None:
    doc = _doc(units=1)
    doc.modelspace().add_line((0, 0), (2, 1), dxfattribs={"layer": "CUT"})
    d = read_design(_save(doc, tmp_path), "dxf")
    assert d.bounds() == pytest.approx((0, 0, 50.8, 25.4))


def test_unitless_is_read_as_mm_with_a_warning(tmp_path: Path) -> None:
    doc = _doc(units=0)
    doc.modelspace().add_line((0, 0), (2, 1), dxfattribs={"layer": "CUT"})
    d = read_design(_save(doc, tmp_path), "dxf")
    assert d.bounds() == pytest.approx((0, 0, 2, 1))
    assert any("$INSUNITS" in w for w in d.warnings)


def test_nested_blocks_with_transforms_and_layer_zero_inheritance(tmp_path: Path) -> None:
    doc = _doc()
    hole = doc.blocks.new("HOLE")
    hole.add_circle((0, 0), 1)  # on layer 0: takes the INSERT's layer
    pair = doc.blocks.new("PAIR")
    pair.add_blockref("HOLE", (0, 0))
    pair.add_blockref("HOLE", (10, 0))
    msp = doc.modelspace()
    msp.add_line((0, 0), (1, 0), dxfattribs={"layer": "CUT"})  # keeps the origin at (0, 0)
    msp.add_blockref("PAIR", (100, 50), dxfattribs={"layer": "CUT", "rotation": 90,
                                                    "xscale": 2, "yscale": 2})  # fmt: skip
    d = read_design(_save(doc, tmp_path), "dxf")
    circles = [p for p in d.paths if p.source.startswith("CIRCLE")]
    assert len(circles) == 2 and all(p.source.endswith("on CUT") for p in circles)
    centres = sorted(tuple(np.round(p.points.mean(axis=0), 2)) for p in circles)
    # PAIR scaled ×2 and turned 90°: HOLE at (0,0) → (100,50); at (10,0) → (100,70).
    assert centres == [(100.0, 50.0), (100.0, 70.0)]
    assert all(_radius_dev(p.points, *p.points.mean(axis=0), 2.0) < 0.03 for p in circles)


def test_minsert_arrays(tmp_path: Path) -> None:
    doc = _doc()
    doc.blocks.new("DOT").add_circle((0, 0), 1)
    msp = doc.modelspace()
    ref = msp.add_blockref("DOT", (10, 10), dxfattribs={"layer": "CUT"})
    ref.grid(size=(2, 3), spacing=(5, 7))
    d = read_design(_save(doc, tmp_path), "dxf")
    assert len(d.paths) == 6


def test_off_layers_are_skipped(tmp_path: Path) -> None:
    doc = _doc()
    doc.layers.add("HIDDEN", color=2).off()
    msp = doc.modelspace()
    msp.add_line((0, 0), (10, 0), dxfattribs={"layer": "HIDDEN"})
    msp.add_line((0, 0), (5, 5), dxfattribs={"layer": "CUT"})
    d = read_design(_save(doc, tmp_path), "dxf")
    assert [lay.name for lay in d.layers] == ["CUT"]
    assert any("HIDDEN" in w for w in d.warnings)


def test_damaged_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dxf"
    bad.write_text("0\nSECTION\n2\nENTITIES\n0\nLINE\n10\nnot-a-number\n")
    garbage = tmp_path / "g.dxf"
    garbage.write_bytes(b"\x00\x01binary junk" * 100)
    for src in (bad, garbage):
        # Refused when read, or recovered to nothing: never G-code, never another exception.
        with pytest.raises(DesignError):
            convert_file(src, "dxf", tmp_path / "o.gcode", bed_mm=(400, 300), max_power_s=1000)
        assert not (tmp_path / "o.gcode").exists()


def test_dxf_through_the_pipeline_cuts_inside_first(tmp_path: Path) -> None:
    doc = _doc()
    msp = doc.modelspace()
    msp.add_lwpolyline([(0, 0), (60, 0), (60, 40), (0, 40)], close=True,
                       dxfattribs={"layer": "CUT"})  # fmt: skip
    for x in (15, 45):
        msp.add_circle((x, 20), 5, dxfattribs={"layer": "CUT"})
    out = tmp_path / "d.gcode"
    report = convert_file(_save(doc, tmp_path), "dxf", out, bed_mm=(400, 300), max_power_s=1000,
                          placement={"x_mm": 20, "y_mm": 30})  # fmt: skip
    rp = replay(out.read_text())
    assert len(rp.burns) == 3
    assert np.ptp(rp.burns[-1][:, 0]) == pytest.approx(60, abs=0.01)  # the outline last
    assert report.stats["laser_bounds"]["xmin"] == pytest.approx(20, abs=0.01)
    assert report.stats["laser_bounds"]["ymax"] == pytest.approx(70, abs=0.01)
    assert math.isclose(report.stats["laser_on_mm"], 200 + 2 * 2 * math.pi * 5, rel_tol=1e-3)


def test_block_that_contains_itself_is_refused(tmp_path: Path) -> None:
    doc = _doc()
    block = doc.blocks.new("A")
    block.add_circle((0, 0), 1)
    block.add_blockref("A", (5, 0))
    doc.modelspace().add_blockref("A", (10, 10))
    with pytest.raises(DesignError, match="cycle"):
        read_design(_save(doc, tmp_path), "dxf")
