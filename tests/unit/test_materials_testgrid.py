"""Test grid geometry (pure) and the Hershey labels; the grid through the design pipeline."""

from __future__ import annotations

import json
import re
from pathlib import Path as FsPath
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from laserd.designs import design_to_gcode
from laserd.materials.hershey import CAP_HEIGHT, GLYPHS, text_strokes, text_width
from laserd.materials.testgrid import TestGridRequest, build_test_grid, label_lines
from laserd.schemas.designs import Operation


def request(**kw: Any) -> TestGridRequest:
    body: dict[str, Any] = {
        "operation": "fill",
        "power_pct": {"min": 10, "max": 100, "steps": 10},
        "speed_mm_min": {"min": 500, "max": 5000, "steps": 10},
    }
    body.update(kw)
    return TestGridRequest.model_validate(body)


def test_power_rises_along_columns_and_speed_along_rows() -> None:
    grid = build_test_grid(request())
    assert len(grid.cells) == 100
    by_pos = {(c["row"], c["col"]): c for c in grid.cells}
    assert [by_pos[(0, col)]["power_pct"] for col in range(10)] == [
        10, 20, 30, 40, 50, 60, 70, 80, 90, 100
    ]  # fmt: skip
    assert [by_pos[(row, 0)]["speed_mm_min"] for row in range(10)] == list(range(500, 5001, 500))
    for c in grid.cells:  # X grows with the column, Y with the row
        assert c["x_mm"] == pytest.approx(c["col"] * 13)
        assert (
            by_pos[(c["row"], c["col"])]["power_pct"]
            == by_pos[(9 - c["row"], c["col"])]["power_pct"]
        )
    xs = [by_pos[(0, col)]["x_mm"] for col in range(10)]
    ys = [by_pos[(row, 0)]["y_mm"] for row in range(10)]
    assert xs == sorted(xs) and ys == sorted(ys)


def test_every_cell_burns_on_its_own_layer_with_its_values() -> None:
    grid = build_test_grid(request(operation="cut", passes=2))
    design = grid.design
    for cell in grid.cells:
        layer = design.layer(cell["layer_id"])
        assert layer.operation is Operation.cut and layer.passes == 2 and layer.air_assist
        assert (layer.power_pct, layer.speed_mm_min) == (cell["power_pct"], cell["speed_mm_min"])
        squares = [p for p in design.paths if p.layer == cell["layer_id"]]
        assert len(squares) == 1 and squares[0].closed
        lo, hi = squares[0].points.min(axis=0), squares[0].points.max(axis=0)
        assert np.allclose(hi - lo, [10, 10]) and np.allclose(lo, [cell["x_mm"], cell["y_mm"]])
    colors = [lay.color for lay in design.layers]
    assert len(set(colors)) == len(colors)  # the preview tells every layer apart


def test_labels_sit_under_their_cell_within_its_width() -> None:
    grid = build_test_grid(request(cell_mm=8, gap_mm=2))
    label_layer = design_layer = grid.design.layers[-1]
    assert design_layer.name == "labels" and label_layer.operation is Operation.score
    # default label setting: the grid's lowest power at its highest speed
    assert (label_layer.power_pct, label_layer.speed_mm_min) == (10, 5000)
    strokes = [p.points for p in grid.design.paths if p.layer == label_layer.id]
    for cell in grid.cells:
        x0, y0 = cell["x_mm"], cell["y_mm"]
        mine = [
            s for s in strokes
            if x0 - 0.01 <= s[:, 0].min() and s[:, 0].max() <= x0 + 8 + 0.01
            and s[:, 1].max() <= y0 and s[:, 1].min() > y0 - 8
        ]  # fmt: skip
        assert mine, cell
    bounds = grid.design.bounds()
    assert bounds is not None and bounds[0] >= 0 and bounds[1] >= -0.01
    assert bounds[2] == pytest.approx(grid.width_mm) and bounds[3] <= grid.height_mm + 0.01


def test_without_labels_only_cells() -> None:
    grid = build_test_grid(request(labels=False))
    assert len(grid.design.layers) == 100 and len(grid.design.paths) == 100


def test_label_text() -> None:
    assert label_lines(12.5, 1500.0) == ("12.5%", "1500")
    assert label_lines(100.0, 600.0) == ("100%", "600")


@pytest.mark.parametrize(
    "bad",
    [
        {"operation": "image"},
        {"operation": "off"},
        {"power_pct": {"min": 50, "max": 10, "steps": 3}},
        {"power_pct": {"min": 10, "max": 120, "steps": 3}},
        {"power_pct": {"min": 10, "max": 20, "steps": 1}},
        {"speed_mm_min": {"min": 0, "max": 100, "steps": 3}},
        {"speed_mm_min": {"min": 10, "max": 100, "steps": 21}},
        {"cell_mm": 1},
        {"colour": "red"},
    ],
)
def test_requests_are_validated(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        request(**bad)


def test_hershey_glyphs_cover_the_labels_and_stay_in_their_box() -> None:
    for ch in "0123456789%./- mn":
        assert ch in GLYPHS, ch
    for ch, (advance, strokes) in GLYPHS.items():
        for stroke in strokes:
            pts = np.array(stroke)
            assert pts[:, 0].min() >= 0 and pts[:, 0].max() <= advance, ch
            assert pts[:, 1].min() >= -7 and pts[:, 1].max() <= 25, ch
    # digits are distinct drawings
    shapes = {GLYPHS[d][1] for d in "0123456789"}
    assert len(shapes) == 10
    assert text_width("100%", CAP_HEIGHT) == 20 * 3 + 24
    strokes = text_strokes("10", 2.1, 5.0, 1.0)
    allp = np.vstack(strokes)
    assert allp[:, 0].min() >= 5.0 and allp[:, 1].min() >= 1.0 - 1e-9
    assert allp[:, 1].max() == pytest.approx(1.0 + 2.1)


def test_a_10_by_10_grid_becomes_runnable_gcode(tmp_path: FsPath) -> None:
    grid = build_test_grid(request())
    out = tmp_path / "grid.gcode"
    report = design_to_gcode(grid.design, out, bed_mm=(400, 400), max_power_s=1000)
    text = out.read_text()
    # every cell's speed and power appears as a feed and an S word (S = power % of $30)
    for cell in grid.cells:
        assert re.search(rf"F{int(cell['speed_mm_min'])}\b", text), cell
        assert re.search(rf"S{int(cell['power_pct'] * 10)}\b", text), cell
    assert report.stats["lines"] > 1000 and not report.warnings


def test_command_line_writes_the_grid_and_lists_its_cells(
    tmp_path: FsPath, capsys: pytest.CaptureFixture[str]
) -> None:
    from laserd.materials.__main__ import main

    out = tmp_path / "grid.gcode"
    argv = ["test-grid", "--operation", "score", "--power", "20:80:4", "--speed", "600:3000:3"]
    assert main([*argv, "--x", "20", "--y", "30", "--gcode", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["grid"]) == 12 and report["grid"][-1] == {
        "row": 2, "col": 3, "power_pct": 80, "speed_mm_min": 3000
    }  # fmt: skip
    assert report["stats"]["bounds"]["xmin"] == 20 and report["stats"]["bounds"]["ymin"] == 30
    assert "F3000" in out.read_text()
    # off the bed, or out of range: refused with a reason, nothing claimed
    assert main([*argv, "--x", "390", "--y", "0", "--gcode", str(tmp_path / "x.gcode")]) == 1
    assert "off_bed" in capsys.readouterr().err
    assert main(["test-grid", "--power", "20:180:4", "--speed", "600:3000:3"]) == 2
    assert "power_pct.max" in capsys.readouterr().err


@pytest.mark.parametrize("operation", ["fill", "cut"])
def test_the_grid_as_svg_reads_back_one_layer_per_cell(operation: str, tmp_path: FsPath) -> None:
    from laserd.designs import read_design
    from laserd.materials.testgrid import grid_svg

    grid = build_test_grid(
        request(
            operation=operation,
            power_pct={"min": 5, "max": 100, "steps": 20},
            speed_mm_min={"min": 100, "max": 6000, "steps": 20},
        )
    )
    src = tmp_path / "grid.svg"
    src.write_bytes(grid_svg(grid))
    design = read_design(src, "svg")
    by_color = {lay.color: lay.id for lay in design.layers}
    mine = {lay.id: lay for lay in grid.design.layers}
    assert len(by_color) == len(mine) == 401  # 400 distinct cell colours and the labels
    for cell in grid.cells:
        color = mine[cell["layer_id"]].color
        paths = [p for p in design.paths if p.layer == by_color[color]]
        assert len(paths) == 1 and paths[0].closed
        lo, hi = paths[0].points.min(axis=0), paths[0].points.max(axis=0)
        assert np.allclose(lo, [cell["x_mm"], cell["y_mm"]], atol=1e-3), cell
        assert np.allclose(hi - lo, [10, 10], atol=1e-3)
    expected = Operation.fill if operation == "fill" else None
    if expected is not None:
        assert all(
            lay.operation is Operation.fill for lay in design.layers if lay.color != "#000000"
        )
    labels = [p for p in design.paths if p.layer == by_color["#000000"]]
    assert len(labels) == sum(1 for p in grid.design.paths if not p.closed)
