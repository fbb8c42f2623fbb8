"""SVG reading: units, transforms, reuse, styles, hidden things, text, clips, images, safety."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from laserd.designs import DesignError, read_design
from laserd.designs.svg import MAX_SVG_BYTES
from laserd.schemas.designs import Operation
from tests.unit.designs_util import DATA, svg_doc


def _read(tmp_path: Path, text: str | bytes):
    src = tmp_path / "d.svg"
    if isinstance(text, str):
        text = text.encode()
    src.write_bytes(text)
    return read_design(src, "svg")


def test_viewbox_and_units_give_millimetres_with_y_up(tmp_path: Path) -> None:
    # 200 user units across 50 mm: 4 units per mm. A 40×20-unit rect at (20, 40).
    d = _read(tmp_path, svg_doc('<rect x="20" y="40" width="40" height="20" stroke="red" '
                                'fill="none"/>', width="50mm", height="25mm",
                                viewbox="0 0 200 100"))  # fmt: skip
    assert d.width_mm == pytest.approx(50) and d.height_mm == pytest.approx(25)
    xmin, ymin, xmax, ymax = d.bounds()
    assert (xmin, xmax) == (pytest.approx(5), pytest.approx(15))
    # y 40..60 units from the top = 10..15 mm from the top = 10..15 mm from the bottom of 25.
    assert (ymin, ymax) == (pytest.approx(10), pytest.approx(15))


def test_inches_and_nested_transforms(tmp_path: Path) -> None:
    body = ('<g transform="translate(1,0)"><g transform="rotate(90)">'
            '<line x1="0" y1="0" x2="1" y2="0" stroke="#000"/></g></g>')  # fmt: skip
    d = _read(tmp_path, svg_doc(body, width="2in", height="2in", viewbox="0 0 2 2"))
    (path,) = d.paths
    # translate(1,0) rotate(90): (0,0)→(1,0), (1,0)→(1,1) in user units (inches), y down.
    got = sorted(map(tuple, np.round(path.points, 3)))
    assert got == [(25.4, 25.4), (25.4, 50.8)]


def test_use_defs_and_css_classes(tmp_path: Path) -> None:
    body = (
        "<style>.cut { stroke: #ff0000; fill: none } .mark { stroke: #0000ff; fill: none }</style>"
        '<defs><circle id="c" cx="0" cy="0" r="5"/></defs>'
        '<use xlink:href="#c" x="20" y="20" class="cut"/>'
        '<use href="#c" x="60" y="20" class="mark"/>'
    )
    d = _read(tmp_path, svg_doc(body))
    ops = {lay.color: lay.operation for lay in d.layers}
    assert ops == {"#ff0000": Operation.cut, "#0000ff": Operation.score}
    red = next(lay.id for lay in d.layers if lay.color == "#ff0000")
    (circle,) = [p for p in d.paths if p.layer == red]
    assert circle.closed
    centre = circle.points.mean(axis=0)
    assert centre == pytest.approx([20, 80], abs=0.05)


def test_hidden_elements_are_skipped(tmp_path: Path) -> None:
    body = (
        '<rect x="1" y="1" width="5" height="5" stroke="red" fill="none" display="none"/>'
        '<g style="display:none"><rect x="1" y="1" width="5" height="5" stroke="red"/></g>'
        '<rect x="1" y="1" width="5" height="5" stroke="red" visibility="hidden"/>'
        '<rect x="10" y="10" width="5" height="5" stroke="blue" fill="none"/>'
    )
    d = _read(tmp_path, svg_doc(body))
    assert [lay.color for lay in d.layers] == ["#0000ff"]
    assert len(d.paths) == 1


def test_text_is_skipped_with_a_warning_naming_it(tmp_path: Path) -> None:
    body = ('<text id="title" x="5" y="5">Hello maker</text>'
            '<rect x="10" y="10" width="5" height="5" stroke="red" fill="none"/>')  # fmt: skip
    d = _read(tmp_path, svg_doc(body))
    assert len(d.paths) == 1
    (w,) = [w for w in d.warnings if "text" in w]
    assert "text#title" in w and "Hello maker" in w and "convert text to paths" in w


def _mm_points(d) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.vstack([p.points for p in d.paths])


def test_clip_path_cuts_outlines_without_adding_the_clip_border(tmp_path: Path) -> None:
    # A circle of radius 8 at (10, 10) shown through the square 0..10: its upper-left quarter.
    body = ('<clipPath id="clip"><rect width="10" height="10"/></clipPath>'
            '<circle id="big" cx="10" cy="10" r="8" stroke="red" fill="none" '
            'clip-path="url(#clip)"/>')  # fmt: skip
    d = _read(tmp_path, svg_doc(body))
    assert d.paths and not any(p.closed for p in d.paths)
    pts = _mm_points(d)
    # Page 100 mm high: user y 0..10 is mm y 90..100.
    assert pts[:, 0].min() >= 2 - 1e-3 and pts[:, 0].max() <= 10 + 1e-3
    assert pts[:, 1].min() >= 90 - 1e-3 and pts[:, 1].max() <= 98 + 1e-3
    assert np.abs(np.hypot(pts[:, 0] - 10, pts[:, 1] - 90) - 8).max() < 0.03  # on the circle
    length = sum(p.length() for p in d.paths)
    assert length == pytest.approx(2 * np.pi * 8 / 4, rel=0.01)
    assert not any("clip-path" in w for w in d.warnings)


def test_clip_path_on_a_transformed_group_uses_the_group_user_space(tmp_path: Path) -> None:
    body = ('<defs><clipPath id="c"><rect x="0" y="0" width="20" height="20"/></clipPath></defs>'
            '<g transform="translate(50,30)" clip-path="url(#c)">'
            '<rect x="-5" y="5" width="40" height="10" stroke="red" fill="none"/>'
            '<circle cx="10" cy="10" r="3" stroke="blue" fill="none"/></g>')  # fmt: skip
    d = _read(tmp_path, svg_doc(body))
    blue = next(lay.id for lay in d.layers if lay.color == "#0000ff")
    (circle,) = [p for p in d.paths if p.layer == blue]
    assert circle.closed  # wholly inside the clip: untouched
    red = [p for p in d.paths if p.layer != blue]
    pts = np.vstack([p.points for p in red])
    # The clip square is 50..70 × 30..50 in the page (mm y 50..70): the rect's sides at
    # x = 45 and 85 are cut away, leaving its top and bottom edges from x = 50 to 70.
    assert pts[:, 0].min() == pytest.approx(50, abs=1e-3)
    assert pts[:, 0].max() == pytest.approx(70, abs=1e-3)
    assert sum(p.length() for p in red) == pytest.approx(40, abs=1e-2)


def test_clip_path_intersects_fills(tmp_path: Path) -> None:
    body = ('<clipPath id="round"><circle cx="50" cy="50" r="10"/></clipPath>'
            '<rect x="0" y="0" width="100" height="100" fill="#000" '
            'clip-path="url(#round)"/>')  # fmt: skip
    d = _read(tmp_path, svg_doc(body))
    (shape,) = d.paths
    assert shape.closed and d.layers[0].operation is Operation.fill
    assert d.bounds() == pytest.approx((40, 40, 60, 60), abs=0.05)


def test_clip_paths_that_cannot_be_applied_are_reported(tmp_path: Path) -> None:
    body = ('<clipPath id="bb" clipPathUnits="objectBoundingBox"><rect width="0.5" height="1"/>'
            '</clipPath><circle id="big" cx="10" cy="10" r="8" stroke="red" fill="none" '
            'clip-path="url(#bb)"/>'
            '<clipPath id="far"><rect x="80" y="80" width="5" height="5"/></clipPath>'
            '<circle id="gone" cx="10" cy="10" r="3" stroke="red" fill="none" '
            'clip-path="url(#far)"/>')  # fmt: skip
    d = _read(tmp_path, svg_doc(body))
    assert any("not applied" in w and "circle#big" in w for w in d.warnings)
    assert any("wholly outside" in w and "circle#gone" in w for w in d.warnings)
    assert len(d.paths) == 1 and d.paths[0].closed


def test_undeclared_namespace_prefix_is_read(tmp_path: Path) -> None:
    text = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="10mm" height="10mm" viewBox="0 0 10 10" '
        'inkscape:version="1.2"><rect sodipodi:type="rect" x="1" y="1" width="8" height="8" '
        'stroke="red" fill="none"/></svg>'
    )
    d = _read(tmp_path, text)
    assert d.bounds() == pytest.approx((1, 1, 9, 9))


def test_malformed_xml_is_refused_with_position(tmp_path: Path) -> None:
    with pytest.raises(DesignError, match=r"not well-formed XML.*line 1"):
        _read(tmp_path, '<svg xmlns="http://www.w3.org/2000/svg"><rect></svg>')


def test_plain_doctype_is_accepted(tmp_path: Path) -> None:
    text = ('<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
            '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
            + svg_doc('<rect x="1" y="1" width="8" height="8" stroke="red" fill="none"/>'))
    assert len(_read(tmp_path, text).paths) == 1


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
        '<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;">'
        '<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;">]>',
        '<!DOCTYPE svg [<!ELEMENT svg ANY>]>',
    ],
)
def test_entities_and_internal_subsets_are_refused_fast(tmp_path: Path, doctype: str) -> None:
    body = '<text>&xxe;</text>' if "xxe" in doctype else '<desc>&h;</desc>'
    text = '<?xml version="1.0"?>' + doctype + svg_doc(body if "ENTITY" in doctype else "")
    t0 = time.perf_counter()
    with pytest.raises(DesignError) as info:
        _read(tmp_path, text)
    assert time.perf_counter() - t0 < 0.5
    assert info.value.code == "unsafe_design"
    assert "root:" not in info.value.message  # nothing of /etc/passwd leaks into the message


def test_entities_hidden_in_utf16_are_refused(tmp_path: Path) -> None:
    text = '<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + svg_doc("")
    with pytest.raises(DesignError) as info:
        _read(tmp_path, "\ufeff".encode("utf-16-le") + text.encode("utf-16-le"))
    assert info.value.code == "unsafe_design"


def test_size_is_bounded(tmp_path: Path) -> None:
    big = svg_doc("<!--" + "x" * (MAX_SVG_BYTES + 10) + "-->")
    with pytest.raises(DesignError, match="larger than"):
        _read(tmp_path, big)


def _png_data_uri(size: tuple[int, int] = (4, 2)) -> str:
    im = Image.new("L", size, 0)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_embedded_image_becomes_an_image_layer_placed_in_mm(tmp_path: Path) -> None:
    body = f'<image x="10" y="20" width="40" height="20" xlink:href="{_png_data_uri()}"/>'
    d = _read(tmp_path, svg_doc(body))
    (layer,) = d.layers
    assert layer.operation is Operation.image
    (img,) = d.images
    corners = img.corners()
    assert corners.min(axis=0) == pytest.approx([10, 60])
    assert corners.max(axis=0) == pytest.approx([50, 80])


def test_external_image_is_never_opened(tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    Image.new("L", (2, 2)).save(secret)
    body = (f'<image x="0" y="0" width="10" height="10" href="{secret}"/>'
            '<rect x="1" y="1" width="8" height="8" stroke="red" fill="none"/>')  # fmt: skip
    d = _read(tmp_path, svg_doc(body))
    assert d.images == []
    assert any("link to other files" in w for w in d.warnings)


def test_real_files_read_with_their_layers() -> None:
    d = read_design(DATA / "crossover.svg", "svg")
    assert len(d.paths) > 10 and len(d.layers) == 3
    d = read_design(DATA / "jsdc.svg", "svg")
    assert [lay.operation for lay in d.layers] == [Operation.fill]
    d = read_design(DATA / "burntest.svg", "svg")  # viewBox of 516023 units over 200 mm
    assert d.width_mm == pytest.approx(200, abs=1e-3)


def test_embedded_image_is_engraved_by_the_raster_pipeline(tmp_path: Path) -> None:
    from tests.unit.designs_util import run_svg

    body = (f'<image x="10" y="20" width="40" height="20" xlink:href="{_png_data_uri()}"/>'
            '<rect x="60" y="20" width="10" height="10" stroke="red" fill="none"/>')  # fmt: skip
    report, rp, _ = run_svg(tmp_path, svg_doc(body))
    # The image (all black) is engraved as raster rows inside its box, before the cut.
    rows = [b for b in rp.burns if np.ptp(b[:, 1]) == 0 and b[0, 0] < 55]
    assert len(rows) > 100
    pts = np.vstack(rows)
    assert pts.min(axis=0) == pytest.approx([10, 60], abs=0.15)
    assert pts.max(axis=0) == pytest.approx([50, 80], abs=0.15)
    cut_at = max(k for k, b in enumerate(rp.burns) if b[0, 0] >= 59)
    assert cut_at == len(rp.burns) - 1
    assert report.stats["laser_on_mm"] > 40 * 200 * 0.9


_HEAD = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
         'width="100mm" height="100mm" viewBox="0 0 100 100">')  # fmt: skip
_MESSY = {
    "use_cycle": _HEAD + '<g id="a"><use xlink:href="#a"/><rect width="5" height="5" '
    'stroke="red"/></g></svg>',
    "use_self": _HEAD + '<use id="u" xlink:href="#u"/></svg>',
    "deep": _HEAD + "<g>" * 5000 + '<rect width="5" height="5" stroke="red"/>' + "</g>" * 5000
    + "</svg>",
    "zero_viewbox": '<svg xmlns="http://www.w3.org/2000/svg" width="100mm" height="100mm" '
    'viewBox="0 0 0 0"><rect width="5" height="5" stroke="red"/></svg>',
    "bad_path_data": _HEAD + '<path d="M 10 10 L foo bar Z" stroke="red"/></svg>',
    "empty": _HEAD + "</svg>",
    "not_svg": "<html><body>hi</body></html>",
    "not_xml": "not xml at all",
    "bad_image_data": _HEAD + '<image width="10" height="10" '
    'xlink:href="data:image/png;base64,AAAA"/></svg>',
    "huge_coordinates": _HEAD + '<path d="M 1e30 1e30 L 2e30 2e30" stroke="red"/></svg>',
    "overflowing_coordinates": _HEAD + '<path d="M 1e400 0 L 10 10" stroke="red"/></svg>',
}


@pytest.mark.parametrize("name", sorted(_MESSY))
def test_messy_files_get_a_readable_refusal_never_a_crash(tmp_path: Path, name: str) -> None:
    from laserd.designs import convert_file

    src = tmp_path / "m.svg"
    src.write_text(_MESSY[name])
    t0 = time.perf_counter()
    with pytest.raises(DesignError) as info:
        convert_file(src, "svg", tmp_path / "m.gcode", bed_mm=(400, 300), max_power_s=1000)
    assert time.perf_counter() - t0 < 2.0
    assert info.value.message and "Traceback" not in info.value.message
    assert not (tmp_path / "m.gcode").exists()


def test_embedded_image_follows_the_rotation_of_the_placement(tmp_path: Path) -> None:
    from tests.unit.designs_util import run_svg

    # A 40 × 20 mm image whose left half is black: turned 90° counter-clockwise, the black
    # half ends at the bottom; the engraving covers 20 × 40 mm at the placed corner.
    im = Image.new("L", (40, 20), 255)
    im.paste(0, (0, 0, 20, 20))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    body = f'<image x="10" y="20" width="40" height="20" xlink:href="{uri}"/>'
    _, rp, _ = run_svg(tmp_path, svg_doc(body),
                       placement={"x_mm": 100, "y_mm": 50, "rotation_deg": 90})  # fmt: skip
    pts = rp.burn_points()
    assert pts.min(axis=0) == pytest.approx([100, 50], abs=0.2)
    # Only the black half burns (its edge softened by resampling, within one source pixel).
    assert pts[:, 0].max() == pytest.approx(120, abs=0.2)
    assert 69.5 <= pts[:, 1].max() <= 71.0
