"""Planning and output, checked on the G-code itself through an independent replay."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from laserd.designs import Design, DesignError, design_to_gcode
from laserd.designs import Path as DPath
from laserd.designs.cutting import apply_tabs, containers, offset_closed
from laserd.designs.flatten import simplify
from laserd.designs.order import Item, order_items, travel_length
from laserd.designs.plan import plan_design
from laserd.schemas.designs import FillSettings, Operation, TabSettings, layer_defaults
from tests.unit.design_replay import replay
from tests.unit.designs_util import BED, run_svg, svg_doc


def square(x: float, y: float, size: float) -> np.ndarray:
    return np.array([[x, y], [x + size, y], [x + size, y + size], [x, y + size]], dtype=float)


def circle(cx: float, cy: float, r: float, n: int = 64) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([cx + r * np.cos(t), cy + r * np.sin(t)])


def _gcode(tmp_path: Path, design: Design, **kw: object) -> str:
    out = tmp_path / "o.gcode"
    kw.setdefault("bed_mm", BED)
    kw.setdefault("max_power_s", 1000)
    design_to_gcode(design, out, **kw)  # type: ignore[arg-type]
    return out.read_text()


def _owner(burn: np.ndarray, rings: list[np.ndarray], tol: float = 0.05) -> int:
    """Index of the ring the burned polyline lies on."""
    for k, ring in enumerate(rings):
        closed = np.vstack([ring, ring[:1]])
        a, b = closed[:-1], closed[1:]
        ok = True
        for p in burn:
            ab = b - a
            t = np.clip(((p - a) * ab).sum(1) / (ab * ab).sum(1), 0, 1)
            d = np.hypot(*(a + t[:, None] * ab - p).T).min()
            if d > tol:
                ok = False
                break
        if ok:
            return k
    raise AssertionError("burn on no ring")


def test_inside_first_across_layers_on_nested_design(tmp_path: Path) -> None:
    # A sheet outline (layer 2) holding two parts (layer 1), each with two holes (layer 2),
    # drawn outermost first: document order would cut the sheet first.
    rings = [square(10, 10, 200), square(20, 20, 80), square(120, 20, 80)]
    rings += [circle(40, 60, 10), circle(80, 60, 10), circle(140, 60, 10), circle(180, 60, 10)]
    layer_of = [2, 1, 1, 2, 2, 2, 2]
    design = Design(
        paths=[DPath(r, True, lay) for r, lay in zip(rings, layer_of, strict=True)],
        layers=[layer_defaults(1, Operation.cut, color="#ff0000"),
                layer_defaults(2, Operation.cut, color="#00ff00", order=-1)],
    )
    rp = replay(_gcode(tmp_path, design))
    seq = [_owner(b, rings) for b in rp.burns]
    assert sorted(set(seq)) == list(range(7))
    first = {k: seq.index(k) for k in range(7)}
    last = {k: len(seq) - 1 - seq[::-1].index(k) for k in range(7)}
    contains = {0: [1, 2, 3, 4, 5, 6], 1: [3, 4], 2: [5, 6]}
    for outer, inner in contains.items():
        for i in inner:
            assert last[i] < first[outer], (outer, i, seq)


def test_kerf_grows_outer_contours_and_shrinks_holes(tmp_path: Path) -> None:
    layer = layer_defaults(1, Operation.cut).model_copy(update={"kerf_mm": 0.4})
    design = Design(paths=[DPath(square(10, 10, 50), True, 1), DPath(square(20, 20, 10), True, 1)],
                    layers=[layer])  # fmt: skip
    rp = replay(_gcode(tmp_path, design))
    boxes = sorted((np.ptp(b[:, 0]), np.ptp(b[:, 1])) for b in rp.burns)
    assert boxes[0] == pytest.approx((9.6, 9.6), abs=0.01)
    assert boxes[1] == pytest.approx((50.4, 50.4), abs=0.01)


def test_offset_of_a_hole_smaller_than_the_kerf_vanishes() -> None:
    assert offset_closed(square(0, 0, 0.2), -0.15, 0.01) == []
    (grown,) = offset_closed(square(0, 0, 10), 0.5, 0.01)
    assert np.ptp(grown[:, 0]) == pytest.approx(11, abs=0.01)


def test_tabs_leave_gaps_of_their_width() -> None:
    ring = square(0, 0, 40)  # perimeter 160
    pieces = apply_tabs(ring, 4, 2.0)
    assert pieces is not None
    cut = sum(float(np.hypot(*np.diff(p, axis=0).T).sum()) for p in pieces)
    assert cut == pytest.approx(160 - 4 * 2.0, abs=1e-6)
    assert apply_tabs(square(0, 0, 1), 4, 2.0) is None


def test_tabs_in_the_gcode(tmp_path: Path) -> None:
    layer = layer_defaults(1, Operation.cut).model_copy(
        update={"tabs": TabSettings(count=3, width_mm=1.5)}
    )
    design = Design(paths=[DPath(circle(50, 50, 20, 200), True, 1)], layers=[layer])
    rp = replay(_gcode(tmp_path, design))
    burned = sum(float(np.hypot(*np.diff(b, axis=0).T).sum()) for b in rp.burns)
    perimeter = DPath(circle(50, 50, 20, 200), True, 1).length()
    assert burned == pytest.approx(perimeter - 3 * 1.5, abs=0.05)
    assert len(rp.burns) in (3, 4)  # the first and last piece meet at the start point


def test_nesting_found_across_shapes() -> None:
    rings = [square(0, 0, 100), square(10, 10, 20), square(12, 12, 5), square(200, 0, 5)]
    anc = containers(rings, [True] * 4)
    assert anc == [[], [0], [0, 1], []]


@pytest.mark.parametrize("rule,centre_filled", [("evenodd", False), ("nonzero", True)])
def test_fill_rules(tmp_path: Path, rule: str, centre_filled: bool) -> None:
    # Two squares drawn the same way round in one element: the fill rule decides the middle.
    outer, inner = square(10, 10, 40), square(20, 20, 20)
    design = Design(
        paths=[DPath(outer, True, 1, rule, "path#a"), DPath(inner, True, 1, rule, "path#a")],  # type: ignore[arg-type]
        layers=[layer_defaults(1, Operation.fill).model_copy(
            update={"fill": FillSettings(interval_mm=1.0, overscan_mm=0)})],
    )  # fmt: skip
    rp = replay(_gcode(tmp_path, design))
    row = [b for b in rp.burns if abs(b[0, 1] - 30.5) < 1e-6]
    covered = sum(abs(b[-1, 0] - b[0, 0]) for b in row)
    assert covered == pytest.approx(40 if centre_filled else 20, abs=1e-6)


def test_fill_is_bidirectional_with_overscan_on_the_bed(tmp_path: Path) -> None:
    layer = layer_defaults(1, Operation.fill).model_copy(
        update={"fill": FillSettings(interval_mm=0.5, overscan_mm=3)}
    )
    design = Design(paths=[DPath(square(1, 10, 20), True, 1)], layers=[layer])
    text = _gcode(tmp_path, design)
    rp = replay(text)
    dirs = [np.sign(b[-1, 0] - b[0, 0]) for b in rp.burns]
    assert dirs[:4] == [1, -1, 1, -1]
    xs = [float(w[1:]) for line in text.splitlines() for w in line.split() if w[:1] == "X"]
    xs += [float(t.split("Y")[0].split("S")[0].split("F")[0])
           for line in text.splitlines() for t in line.split("X")[1:]]  # fmt: skip
    assert min(xs) >= 0.0  # the run-in stops at the bed's edge (x = 1 - 3 would be off it)
    assert max(xs) == pytest.approx(24.0)  # the run-out keeps its 3 mm on the right


def test_crosshatch_adds_perpendicular_lines(tmp_path: Path) -> None:
    layer = layer_defaults(1, Operation.fill).model_copy(
        update={"fill": FillSettings(interval_mm=1.0, crosshatch=True, overscan_mm=0)}
    )
    design = Design(paths=[DPath(square(10, 10, 10), True, 1)], layers=[layer])
    rp = replay(_gcode(tmp_path, design))
    horizontal = [b for b in rp.burns if abs(b[0, 1] - b[-1, 1]) < 1e-6]
    vertical = [b for b in rp.burns if abs(b[0, 0] - b[-1, 0]) < 1e-6]
    assert len(horizontal) == len(vertical) == 10


def test_layer_order_passes_air_and_power_scaling(tmp_path: Path) -> None:
    layers = [
        layer_defaults(1, Operation.cut).model_copy(update={"passes": 2, "air_assist": True,
                                                            "power_pct": 100}),
        layer_defaults(2, Operation.score).model_copy(update={"power_pct": 25}),
        layer_defaults(3, Operation.fill).model_copy(update={"power_pct": 50}),
    ]  # fmt: skip
    design = Design(
        paths=[DPath(square(10, 10, 30), True, 1), DPath(square(60, 10, 10), False, 2),
               DPath(square(100, 10, 5), True, 3)],
        layers=layers,
    )  # fmt: skip
    text = _gcode(tmp_path, design, max_power_s=255)
    assert "M3" not in text and "M4" in text
    s_seq = []
    for line in text.splitlines():
        if "S" in line:
            s_seq.append(int(line.split("S")[1].split("F")[0]))
    burning = [s for s in s_seq if s > 0]
    # fill (50 % of 255), then score (25 %), then cut (100 %).
    assert [s for i, s in enumerate(burning) if i == 0 or s != burning[i - 1]] == [128, 64, 255]
    lines = text.splitlines()
    assert lines.index("M8") > max(i for i, ln in enumerate(lines) if "S64" in ln)
    assert lines[-2:] == ["M5", "M9"]
    rp = replay(text)
    (cut,) = [b for b in rp.burns if np.ptp(b[:, 0]) > 25]
    # Two passes of the cut square, one after the other without stopping the beam.
    assert float(np.hypot(*np.diff(cut, axis=0).T).sum()) == pytest.approx(2 * 120)


def test_nothing_to_burn_says_why(tmp_path: Path) -> None:
    design = Design(paths=[DPath(square(1, 1, 5), True, 1)],
                    layers=[layer_defaults(1, Operation.off)])  # fmt: skip
    with pytest.raises(DesignError, match="every layer is switched off"):
        _gcode(tmp_path, design)
    design = Design(paths=[DPath(square(1, 1, 5), False, 1)],
                    layers=[layer_defaults(1, Operation.fill)])  # fmt: skip
    with pytest.raises(DesignError, match="fill needs closed shapes"):
        _gcode(tmp_path, design)
    with pytest.raises(DesignError, match=r"no shapes.*text skipped"):
        run_svg(tmp_path, svg_doc("<text>hi</text>"))


def test_order_shortens_travel_and_keeps_precedence() -> None:
    rng = np.random.default_rng(7)
    items = [Item(square(*rng.uniform(0, 300, 2), 5), bool(k % 2)) for k in range(300)]
    items.append(Item(square(-10, -10, 400), True, after=list(range(300))))
    doc = travel_length(items, [__import__("laserd.designs.order", fromlist=["Step"]).Step(k)
                                for k in range(len(items))], (0, 0))  # fmt: skip
    steps = order_items(items, (0, 0), budget_s=0.5)
    assert sorted(s.index for s in steps) == list(range(301))
    assert steps[-1].index == 300  # the container comes last
    assert travel_length(items, steps, (0, 0)) < 0.25 * doc


def test_simplify_keeps_within_tolerance() -> None:
    pts = circle(0, 0, 50, 2000)
    few = simplify(pts, 0.01, closed=True)
    assert len(few) < 400
    ring = np.vstack([few, few[:1]])
    for p in pts:
        a, b = ring[:-1], ring[1:]
        ab = b - a
        t = np.clip(((p - a) * ab).sum(1) / (ab * ab).sum(1), 0, 1)
        assert np.hypot(*(a + t[:, None] * ab - p).T).min() <= 0.01 + 1e-9


def test_fidelity_of_flattened_svg_curves(tmp_path: Path) -> None:
    body = ('<circle cx="50" cy="50" r="30" stroke="red" fill="none"/>'
            '<path d="M10 90 C 30 60, 70 120, 90 90" stroke="red" fill="none"/>')  # fmt: skip
    _, rp, _ = run_svg(tmp_path, svg_doc(body))
    pts = rp.burn_points()
    on_circle = np.abs(np.hypot(pts[:, 0] - 50, pts[:, 1] - 50) - 30) <= 0.02 + 1e-3
    # Every burned point of the circle lies on it; the chords' midpoints too.
    (ring,) = [b for b in rp.burns if np.all(np.abs(np.hypot(b[:, 0] - 50, b[:, 1] - 50) - 30) < 1)]
    mids = (ring[1:] + ring[:-1]) / 2
    dev = np.abs(np.hypot(mids[:, 0] - 50, mids[:, 1] - 50) - 30)
    assert dev.max() <= 0.02 + 1e-3  # + the 1 µm rounding of the G-code
    assert on_circle.sum() >= len(ring) - 1
    # The Bézier: burned points within tolerance of the true curve (dense sampling).
    t = np.linspace(0, 1, 20001)[:, None]
    p0, p1, p2, p3 = map(np.array, ([10, 10], [30, 40], [70, -20], [90, 10]))
    curve = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3
    (bez,) = [b for b in rp.burns if b is not ring]
    dense = np.vstack([np.linspace(a, b, 20) for a, b in itertools.pairwise(bez)])
    gap = dense[:, None, :] - curve[None, :, :]
    d = np.min(np.hypot(gap[..., 0], gap[..., 1]), axis=1)
    assert d.max() <= 0.02 + 2e-3


def test_bounds_match_the_document_after_placement(tmp_path: Path) -> None:
    body = '<rect x="10" y="20" width="30" height="40" stroke="red" fill="none"/>'
    report, rp, _ = run_svg(tmp_path, svg_doc(body),
                            placement={"x_mm": 100, "y_mm": 50, "width_mm": 60})  # fmt: skip
    b = report.stats["laser_bounds"]
    assert b["xmin"] == pytest.approx(100, abs=0.05) and b["ymin"] == pytest.approx(50, abs=0.05)
    assert b["xmax"] == pytest.approx(160, abs=0.05) and b["ymax"] == pytest.approx(130, abs=0.05)
    pts = rp.burn_points()
    assert pts.min(axis=0) == pytest.approx([100, 50], abs=0.05)


def test_plan_without_optimising_keeps_document_order() -> None:
    design = Design(paths=[DPath(square(100, 0, 5), False, 1), DPath(square(0, 0, 5), False, 1)],
                    layers=[layer_defaults(1, Operation.score)])  # fmt: skip
    plan = plan_design(design, optimise=False)
    assert plan.runs[0].polylines[0][0] == pytest.approx([100, 0])
    plan = plan_design(design)
    assert plan.runs[0].polylines[0][0] == pytest.approx([0, 0])


def test_real_file_through_the_pipeline_is_valid_gcode(tmp_path: Path) -> None:
    from tests.unit.designs_util import DATA

    text = (DATA / "crossover.svg").read_text()
    report, rp, gcode = run_svg(tmp_path, text)
    assert report.stats["lines"] > 100 and report.stats["laser_on_mm"] > 100
    assert max(len(line) for line in gcode.splitlines()) < 70
    assert rp.spindle == "M5"


def test_angled_hatch_covers_the_shape_at_its_interval(tmp_path: Path) -> None:
    layer = layer_defaults(1, Operation.fill).model_copy(
        update={"fill": FillSettings(interval_mm=0.5, angle_deg=45, overscan_mm=0)}
    )
    design = Design(paths=[DPath(square(10, 10, 20), True, 1)], layers=[layer])
    rp = replay(_gcode(tmp_path, design))
    for b in rp.burns:
        d = b[-1] - b[0]
        assert abs(abs(d[0]) - abs(d[1])) < 2e-3  # every line at ±45°
        assert b.min() >= 10 - 1e-3 and b.max() <= 30 + 1e-3  # inside the square
    # Lines 0.5 mm apart filling a 20 mm square: the burned length is its area / interval.
    burned = sum(float(np.hypot(*(b[-1] - b[0]))) for b in rp.burns)
    assert burned == pytest.approx(400 / 0.5, rel=0.01)


def test_duplicate_lines_on_a_layer_are_burned_once(tmp_path: Path) -> None:
    sq = square(10, 10, 20)
    design = Design(
        paths=[DPath(sq, True, 1), DPath(np.roll(sq, 2, axis=0)[::-1], True, 1),  # same square
               DPath(square(50, 10, 5), False, 1), DPath(square(50, 10, 5)[::-1], False, 1),
               DPath(sq, True, 2)],  # on another layer: its own work
        layers=[layer_defaults(1, Operation.cut), layer_defaults(2, Operation.score)],
    )  # fmt: skip
    plan = plan_design(design)
    assert sum(len(r.polylines) for r in plan.runs) == 3
    assert any("2 duplicate path(s)" in w for w in plan.warnings)
