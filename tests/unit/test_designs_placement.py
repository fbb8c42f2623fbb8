"""Placement (one affine transform), the bed check, stored layer settings, layer defaults,
and the layer-coloured preview."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from laserd.designs import Design, DesignError, design_to_gcode
from laserd.designs import Path as DPath
from laserd.designs.layers import apply_layer_settings, stroke_operation
from laserd.designs.placement import check_on_bed, place
from laserd.schemas.designs import (
    LayerPatch,
    LayerSettings,
    Operation,
    Placement,
    apply_layer_patches,
    layer_defaults,
)
from tests.unit.designs_util import run_svg, svg_doc


def _design() -> Design:
    # A 20 × 10 mm rectangle at (5, 5) with a marker point at its lower-left corner.
    rect = np.array([[5, 5], [25, 5], [25, 15], [5, 15]], dtype=float)
    return Design(paths=[DPath(rect, True, 1)], layers=[layer_defaults(1, Operation.cut)])


def test_width_alone_keeps_the_aspect_ratio() -> None:
    d = place(_design(), Placement(x_mm=100, y_mm=50, width_mm=40))
    assert d.bounds() == pytest.approx((100, 50, 140, 70))


def test_both_sizes_stretch() -> None:
    d = place(_design(), Placement(x_mm=0, y_mm=0, width_mm=40, height_mm=40))
    assert d.bounds() == pytest.approx((0, 0, 40, 40))


def test_rotation_about_the_centre_then_lower_left_at_the_position() -> None:
    d = place(_design(), Placement(x_mm=10, y_mm=10, rotation_deg=90))
    assert d.bounds() == pytest.approx((10, 10, 20, 30))
    # Counter-clockwise: the rectangle's lower-right corner (25, 5) ends at the top right.
    pts = d.paths[0].points
    assert any(np.allclose(p, [20, 30]) for p in pts)


def test_mirror_flips_left_right() -> None:
    tri = Design(paths=[DPath(np.array([[0, 0], [10, 0], [0, 5]], float), True, 1)],
                 layers=[layer_defaults(1, Operation.cut)])  # fmt: skip
    d = place(tri, Placement(mirror_x=True))
    assert sorted(map(tuple, d.paths[0].points.tolist())) == [(0, 0), (10, 0), (10, 5)]


def test_without_position_the_document_position_stays() -> None:
    d = place(_design(), Placement(width_mm=40))
    assert d.bounds() == pytest.approx((5, 5, 45, 25))


def test_one_coordinate_moves_along_its_axis_only() -> None:
    d = place(_design(), Placement(x_mm=100))
    assert d.bounds() == pytest.approx((100, 5, 120, 15))
    d = place(_design(), Placement(y_mm=40))
    assert d.bounds() == pytest.approx((5, 40, 25, 50))


def test_off_the_bed_is_refused_with_the_numbers(tmp_path: Path) -> None:
    d = place(_design(), Placement(x_mm=390, y_mm=10))
    with pytest.raises(DesignError) as info:
        check_on_bed(d, (400, 300))
    msg = info.value.message
    assert info.value.code == "off_bed"
    assert "390.00 to 410.00" in msg and "0 to 400 mm in X" in msg
    with pytest.raises(DesignError):
        design_to_gcode(_design(), tmp_path / "x.gcode", bed_mm=(400, 300), max_power_s=1000,
                        placement=Placement(x_mm=-1, y_mm=0))  # fmt: skip
    assert not (tmp_path / "x.gcode").exists()


def test_off_layers_do_not_count_for_the_bed() -> None:
    d = _design()
    d.paths.append(DPath(np.array([[500.0, 5.0], [510.0, 5.0]]), False, 2))
    d.layers.append(layer_defaults(2, Operation.off))
    check_on_bed(d, (400, 300))


def test_stored_layer_settings_follow_the_ids_and_keep_the_colour() -> None:
    d = _design()
    stored = LayerSettings(id=1, color="#123456", operation=Operation.score, power_pct=12)
    apply_layer_settings(d, [stored, LayerSettings(id=9)])
    (layer,) = d.layers
    assert layer.operation is Operation.score and layer.power_pct == 12
    assert layer.color == d.layers[0].color == "#000000"


def test_layer_patch_changes_only_what_it_names() -> None:
    base = layer_defaults(3, Operation.cut, color="#ff0000")
    out = LayerPatch(id=3, power_pct=55, tabs={"count": 2}).apply(base)  # type: ignore[arg-type]
    assert out.power_pct == 55 and out.tabs.count == 2 and out.speed_mm_min == base.speed_mm_min
    with pytest.raises(ValueError):
        LayerPatch(id=3, power_pct=150)
    with pytest.raises(ValueError):
        LayerSettings(id=1, color="red")


def test_default_operations_follow_the_colour_conventions() -> None:
    assert stroke_operation("#ff0000", [0.5]) is Operation.cut
    assert stroke_operation("#e01010", [0.5]) is Operation.cut
    assert stroke_operation("#000000", [0.05]) is Operation.cut  # hairline
    assert stroke_operation("#000000", [0.3]) is Operation.score
    assert stroke_operation("#ff8000", [0.3]) is Operation.score


def test_preview_draws_each_layer_in_its_colour(tmp_path: Path) -> None:
    body = ('<rect x="10" y="10" width="30" height="30" stroke="#ff0000" fill="none"/>'
            '<rect x="60" y="10" width="30" height="30" stroke="#0000ff" fill="none"/>')
    src = tmp_path / "d.svg"
    src.write_text(svg_doc(body))
    from laserd.designs import convert_file

    convert_file(src, "svg", tmp_path / "d.gcode", bed_mm=(400, 300), max_power_s=1000,
                 preview_out=tmp_path / "p.png", thumb_out=tmp_path / "t.png")  # fmt: skip
    with Image.open(tmp_path / "p.png") as im:
        px = np.asarray(im.convert("RGB")).reshape(-1, 3).astype(int)
    reds = ((px[:, 0] > 180) & (px[:, 1] < 80) & (px[:, 2] < 80)).sum()
    blues = ((px[:, 2] > 180) & (px[:, 0] < 80) & (px[:, 1] < 80)).sum()
    assert reds > 200 and blues > 200
    assert (tmp_path / "t.png").exists()


def test_svg_report_lists_layers_and_placed_box(tmp_path: Path) -> None:
    body = '<rect x="10" y="10" width="30" height="30" stroke="#ff0000" fill="#00ff00"/>'
    report, _, _ = run_svg(tmp_path, svg_doc(body), placement={"x_mm": 5, "y_mm": 6})
    assert [lay["operation"] for lay in report.layers] == ["cut", "off"]
    assert report.design["placed_mm"]["xmin"] == pytest.approx(5)


def test_command_line_converts_and_refuses_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from laserd.designs.__main__ import main

    src = tmp_path / "d.svg"
    src.write_text(svg_doc('<rect x="10" y="10" width="30" height="30" stroke="#ff0000" '
                           'fill="none"/>'))  # fmt: skip
    rc = main([str(src), "--gcode", str(tmp_path / "o.gcode"), "--preview", str(tmp_path / "p.png"),
               "--x", "5", "--y", "5", "--width", "60", "--bed", "400x300"])  # fmt: skip
    assert rc == 0 and (tmp_path / "o.gcode").exists() and (tmp_path / "p.png").exists()
    assert '"xmax": 65.0' in capsys.readouterr().out
    assert main([str(src), "--gcode", str(tmp_path / "x.gcode"), "--x", "390", "--y", "0"]) == 1
    assert "off_bed" in capsys.readouterr().err


def test_layer_patches_apply_by_id_and_refuse_unknown_ids() -> None:
    layers = [layer_defaults(1, Operation.cut), layer_defaults(2, Operation.score)]
    out = apply_layer_patches(layers, [LayerPatch(id=2, operation=Operation.off)])
    assert [lay.operation for lay in out] == [Operation.cut, Operation.off]
    assert layers[1].operation is Operation.score  # the input is not changed
    with pytest.raises(KeyError):
        apply_layer_patches(layers, [LayerPatch(id=7, passes=2)])


def test_image_files_get_rotation_and_mirror_through_the_design_pipeline(tmp_path: Path) -> None:
    from laserd.designs.images import image_file_design
    from laserd.imaging.laser_settings import LaserSettings
    from tests.unit.design_replay import replay

    # 40 × 20 px, the left quarter black, at 1 mm per pixel: 40 × 20 mm at (10, 10).
    im = Image.new("L", (40, 20), 255)
    im.paste(0, (0, 0, 10, 20))
    src = tmp_path / "p.png"
    im.save(src)
    laser = LaserSettings(line_interval_mm=0.5, width_mm=40, origin_mm={"x": 10, "y": 10},
                          overscan_mm=0, dither="threshold")  # fmt: skip
    design = image_file_design(src, laser, max_megapixels=10)
    out = tmp_path / "o.gcode"

    def burned(placement: Placement | None) -> np.ndarray:
        design_to_gcode(design, out, bed_mm=(400, 300), max_power_s=1000, laser=laser,
                        placement=placement)  # fmt: skip
        return replay(out.read_text()).burn_points()

    plain = burned(None)  # where the laser settings put it: the black quarter at x 10..20
    assert plain.min(axis=0) == pytest.approx([10, 10], abs=0.3)
    assert plain.max(axis=0) == pytest.approx([20, 30], abs=0.6)  # rows sit on their lower edge
    mirrored = burned(Placement(mirror_x=True))  # the black quarter moves to the right end
    assert mirrored.min(axis=0) == pytest.approx([40, 10], abs=0.3)
    assert mirrored.max(axis=0) == pytest.approx([50, 30], abs=0.6)
    turned = burned(Placement(x_mm=100, y_mm=100, rotation_deg=90))  # black quarter at bottom
    assert turned.min(axis=0) == pytest.approx([100, 100], abs=0.3)
    assert turned.max(axis=0) == pytest.approx([120, 110], abs=0.6)
