"""Designs → G-code: travel, speed, fidelity, inside-first and memory (issue 14, "Measured").

Run: .venv/bin/python tests/bench/bench_designs.py [--only NAME ...] [--no-memory]
Prints JSON.

The set: the real SVGs in tests/data/svg (see its README) and designs made here with a fixed
seed: ``nested_sheet`` (a sheet of parts with holes, drawn outermost first and shuffled),
``fills`` (filled shapes of three colours over strokes), ``paths_10k`` (10,000 paths: circles,
rectangles with holes, open polylines, shuffled). For each file:

- ``travel``: beam-off G0 distance of the planned G-code against the same paths in document
  order and direction (``optimise=False``, which still cuts inside-first); the goal is at
  most 50 % of it over the set (``travel_ratio_set``, total over total);
- ``seconds``: design file → analysed G-code (read, layers, plan, write, analyse), warm (the
  best of three conversions after the first in this process, as in the long-lived worker;
  best of, because the machine is shared), plus the cold first run and, separately, the
  time with the preview drawn;
- ``bounds_error_mm``: the G-code's burned extent against the document's own (svgelements'
  exact bounding boxes of the visible shapes, in mm), all layers scored so fill hatching and
  overscan do not blur it;
- ``inside_first``: nested pairs of closed cuts (found geometrically) cut in order, counted
  by an independent replay of the G-code;
- ``fidelity_max_dev_mm``: on ``curves`` (circles, ellipses and Béziers of known equations),
  the largest distance of the burned path from the true curve;
- ``peak_traced_mb``: tracemalloc peak of one conversion (Python and numpy allocations).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from laserd.designs import convert_file, read_design  # noqa: E402
from laserd.designs.cutting import containers  # noqa: E402
from laserd.schemas.designs import Operation  # noqa: E402
from tests.unit.design_replay import replay  # noqa: E402

DATA = REPO / "tests" / "data" / "svg"
BED = (600.0, 600.0)


# --------------------------------------------------------------------------- generated designs


def _svg(body: list[str], size_mm: float) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size_mm}mm" height="{size_mm}mm" '
        f'viewBox="0 0 {size_mm} {size_mm}">' + "".join(body) + "</svg>"
    )


def nested_sheet(rng: np.random.Generator) -> str:
    body = ['<rect x="5" y="5" width="390" height="290" stroke="#ff0000" fill="none"/>']
    parts = []
    for gx in range(8):
        for gy in range(6):
            x, y = 15 + gx * 47, 15 + gy * 46
            part = [f'<rect x="{x}" y="{y}" width="40" height="38" rx="3" stroke="#ff0000" '
                    'fill="none"/>']  # fmt: skip
            for hx, hy in ((10, 10), (30, 10), (20, 28)):
                part.append(f'<circle cx="{x + hx}" cy="{y + hy}" r="4" stroke="#ff0000" '
                            'fill="none"/>')  # fmt: skip
            part.append(f'<path d="M{x + 5} {y + 20} h 30" stroke="#0000ff" fill="none"/>')
            parts.append(part)
    order = rng.permutation(len(parts))
    for k in order:
        body.extend(parts[k])
    return _svg(body, 400)


def fills(rng: np.random.Generator) -> str:
    body = []
    for k in range(60):
        x, y = rng.uniform(10, 250, 2)
        colour = ("#000000", "#404040", "#808080")[k % 3]
        if k % 2:
            body.append(f'<circle cx="{x:.2f}" cy="{y:.2f}" r="{rng.uniform(4, 15):.2f}" '
                        f'fill="{colour}" stroke="none"/>')  # fmt: skip
        else:
            w, h = rng.uniform(5, 30, 2)
            body.append(f'<rect x="{x:.2f}" y="{y:.2f}" width="{w:.2f}" height="{h:.2f}" '
                        f'fill="{colour}" stroke="#ff0000"/>')  # fmt: skip
    return _svg(body, 300)


def paths_10k(rng: np.random.Generator) -> str:
    body = []
    n = 0
    while n < 10_000:
        x, y = rng.uniform(5, 490, 2)
        kind = n % 4
        if kind == 0:
            body.append(f'<circle cx="{x:.2f}" cy="{y:.2f}" r="{rng.uniform(0.5, 3):.2f}" '
                        'stroke="#ff0000" fill="none"/>')  # fmt: skip
            n += 1
        elif kind == 1:
            body.append(f'<rect x="{x:.2f}" y="{y:.2f}" width="4" height="4" stroke="#ff0000" '
                        f'fill="none"/><circle cx="{x + 2:.2f}" cy="{y + 2:.2f}" r="1" '
                        'stroke="#ff0000" fill="none"/>')  # fmt: skip
            n += 2
        else:
            pts = " ".join(f"{x + dx:.2f},{y + dy:.2f}" for dx, dy in rng.uniform(0, 4, (5, 2)))
            body.append(f'<polyline points="{pts}" stroke="#0000ff" fill="none"/>')
            n += 1
    order = rng.permutation(len(body))
    return _svg([body[k] for k in order], 500)


def curves() -> str:
    body = [
        '<circle cx="50" cy="50" r="40" stroke="#ff0000" fill="none"/>',
        '<ellipse cx="150" cy="50" rx="40" ry="15" stroke="#ff0000" fill="none" '
        'transform="rotate(20 150 50)"/>',
        '<path d="M10 150 C 40 100, 80 200, 110 150" stroke="#0000ff" fill="none"/>',
        '<path d="M130 150 Q 160 90, 190 150" stroke="#0000ff" fill="none"/>',
    ]
    return _svg(body, 200)


def _true_curves() -> list[np.ndarray]:
    """Dense samples of the ``curves`` design's true curves in mm, Y up (page 200 mm)."""
    t = np.linspace(0, 1, 200_001)[:, None]
    out = []
    a = 2 * np.pi * t[:, 0]
    out.append(np.column_stack([50 + 40 * np.cos(a), 50 + 40 * np.sin(a)]))
    th = math.radians(20)
    ex, ey = 40 * np.cos(a), 15 * np.sin(a)
    out.append(np.column_stack([150 + ex * math.cos(th) - ey * math.sin(th),
                                50 + ex * math.sin(th) + ey * math.cos(th)]))  # fmt: skip
    p = [np.array(v, float) for v in ([10, 150], [40, 100], [80, 200], [110, 150])]
    out.append((1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2]
               + t**3 * p[3])  # fmt: skip
    q = [np.array(v, float) for v in ([130, 150], [160, 90], [190, 150])]
    out.append((1 - t) ** 2 * q[0] + 2 * (1 - t) * t * q[1] + t**2 * q[2])
    return [np.column_stack([c[:, 0], 200 - c[:, 1]]) for c in out]


# --------------------------------------------------------------------------- measures


def _document_bounds(src: Path) -> tuple[float, float, float, float] | None:
    """Exact extent of the visible painted shapes, by svgelements' own bounding boxes."""
    import svgelements as se

    doc = se.SVG.parse(io.BytesIO(src.read_bytes()), reify=True, ppi=96.0)
    mm = 25.4 / 96.0
    h = float(doc.height) * mm
    boxes = []
    for e in doc.elements():
        if not isinstance(e, se.Shape):
            continue
        if str(e.values.get("visibility", "visible")) in ("hidden", "collapse"):
            continue
        # Painted means a colour that is not fully transparent (what laserd burns).
        stroke = e.stroke is not None and e.stroke.value is not None and e.stroke.alpha > 0
        fill = e.fill is not None and e.fill.value is not None and e.fill.alpha > 0
        if not (stroke or fill):
            continue
        bb = e.bbox()
        if bb is not None:
            boxes.append(bb)
    if not boxes:
        return None
    b = np.array(boxes)
    return (float(b[:, 0].min() * mm), float(h - b[:, 3].max() * mm),
            float(b[:, 2].max() * mm), float(h - b[:, 1].min() * mm))  # fmt: skip


def _convert(src: Path, work: Path, **kw: object) -> tuple[dict, float]:
    out = work / (src.stem + ".gcode")
    t0 = time.perf_counter()
    report = convert_file(src, "svg", out, bed_mm=BED, max_power_s=1000, **kw)  # type: ignore[arg-type]
    return {"report": report, "gcode": out.read_text()}, time.perf_counter() - t0


def _inside_first(src: Path, gcode: str) -> tuple[int, int]:
    """(pairs in order, nested pairs) of closed cut paths, from the replayed burns."""
    design = read_design(src, "svg")
    cut_ids = {lay.id for lay in design.layers if lay.operation is Operation.cut}
    rings = [p.points for p in design.paths if p.layer in cut_ids and p.closed]
    if not rings:
        return 0, 0
    anc = containers(rings, [True] * len(rings))
    rp = replay(gcode)
    # Which burned polyline traces which ring: the same bounding box.
    centres = np.array([(r.min(axis=0) + r.max(axis=0)) / 2 for r in rings])
    spans = np.array([np.ptp(r, axis=0) for r in rings])
    first_seen: dict[int, int] = {}
    last_seen: dict[int, int] = {}
    for k, b in enumerate(rp.burns):
        c, s = (b.min(axis=0) + b.max(axis=0)) / 2, np.ptp(b, axis=0)
        score = np.hypot(*(centres - c).T) + np.abs(spans - s).sum(axis=1)
        j = int(np.argmin(score))
        if score[j] < 0.5:
            first_seen.setdefault(j, k)
            last_seen[j] = k
    pairs = ok = 0
    for i, outer in enumerate(anc):
        for o in outer:
            if i in last_seen and o in first_seen:
                pairs += 1
                ok += last_seen[i] < first_seen[o]
    return ok, pairs


def _fidelity_exact(src: Path, work: Path) -> float:
    res, _ = _convert(src, work)
    rp = replay(res["gcode"])
    truth = _true_curves()
    worst = 0.0
    for b in rp.burns:
        dense = np.vstack([np.linspace(p, q, 8) for p, q in itertools.pairwise(b)])
        c = min(truth, key=lambda c: float(np.hypot(*(c[::5000].mean(axis=0) - b.mean(axis=0)))))
        for chunk in np.array_split(dense, max(1, len(dense) // 64)):
            d = np.hypot(chunk[:, None, 0] - c[None, :, 0], chunk[:, None, 1] - c[None, :, 1])
            worst = max(worst, float(d.min(axis=1).max()))
    return worst


def measure(name: str, src: Path, work: Path, memory: bool) -> dict:
    _, cold = _convert(src, work)
    warm_runs = [_convert(src, work) for _ in range(3)]
    res = warm_runs[-1][0]
    warm = min(t for _, t in warm_runs)  # the machine is shared: the best of three
    out = work / (src.stem + ".doc.gcode")
    from laserd.designs.convert import design_to_gcode
    from laserd.designs.layers import build_layers
    from laserd.designs.svg import read_svg

    design = build_layers(read_svg(src, 0.02))
    design_to_gcode(design, out, bed_mm=BED, max_power_s=1000, optimise=False)
    doc_rp = replay(out.read_text())
    rp = replay(res["gcode"])
    t0 = time.perf_counter()
    _convert(src, work, preview_out=work / (src.stem + ".png"))
    with_preview = time.perf_counter() - t0
    stats = res["report"].stats
    # Bounds: every layer scored, so no hatch or overscan shifts the burned extent.
    scored = [dict(lay, operation="score") for lay in res["report"].layers
              if lay["operation"] != "image"]  # fmt: skip
    b_res, _ = _convert(src, work, layers=scored)
    lb = b_res["report"].stats["laser_bounds"]
    doc_box = _document_bounds(src)
    bounds_err = None
    if doc_box is not None and lb is not None:
        got = (lb["xmin"], lb["ymin"], lb["xmax"], lb["ymax"])
        bounds_err = round(max(abs(a - b) for a, b in zip(got, doc_box, strict=True)), 4)
    ok, pairs = _inside_first(src, res["gcode"])
    entry = {
        "file": name,
        "paths": res["report"].design.get("paths"),
        "layers": len(res["report"].layers),
        "lines": stats["lines"],
        "seconds": round(warm, 3),
        "cold_s": round(cold, 3),
        "with_preview_s": round(with_preview, 3),
        "travel_g0_mm": round(rp.rapid_mm, 1),
        "travel_doc_order_g0_mm": round(doc_rp.rapid_mm, 1),
        "travel_ratio": round(rp.rapid_mm / doc_rp.rapid_mm, 3) if doc_rp.rapid_mm else None,
        "beam_off_mm": stats["travel_mm"],
        "laser_on_mm": stats["laser_on_mm"],
        "bounds_error_mm": bounds_err,
        "inside_first": f"{ok}/{pairs}",
    }
    if memory:
        tracemalloc.start()
        _convert(src, work)
        entry["peak_traced_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    return entry


def _ratio(rows: list[dict]) -> float | None:
    doc = sum(r["travel_doc_order_g0_mm"] for r in rows)
    return round(sum(r["travel_g0_mm"] for r in rows) / doc, 3) if doc else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", help="names of files to run (stem)")
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    args = ap.parse_args()
    rng = np.random.default_rng(14)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = {p.stem: p for p in sorted(DATA.glob("*.svg"))}
        for name, make in (("nested_sheet", nested_sheet), ("fills", fills),
                           ("paths_10k", paths_10k)):  # fmt: skip
            p = work / f"{name}.svg"
            p.write_text(make(rng))
            files[name] = p
        curves_svg = work / "curves.svg"
        curves_svg.write_text(curves())
        results = []
        for name, src in files.items():
            if args.only and name not in args.only:
                continue
            results.append(measure(name, src, work, not args.no_memory))
        fidelity = _fidelity_exact(curves_svg, work)
    real = {p.stem for p in DATA.glob("*.svg")}
    total = sum(r["travel_g0_mm"] for r in results)
    total_doc = sum(r["travel_doc_order_g0_mm"] for r in results)
    ok = pairs = 0
    for r in results:
        a, b = map(int, r["inside_first"].split("/"))
        ok, pairs = ok + a, pairs + b
    print(json.dumps({
        "files": results,
        "travel_ratio_set": round(total / total_doc, 3) if total_doc else None,
        "travel_goal": "<= 0.5",
        "travel_ratio_real_files": _ratio([r for r in results if r["file"] in real]),
        "travel_ratio_generated": _ratio([r for r in results if r["file"] not in real]),
        "max_seconds_real_files": max((r["seconds"] for r in results
                                       if r["file"] in {p.stem for p in DATA.glob("*.svg")}),
                                      default=None),
        "paths_10k_seconds": next((r["seconds"] for r in results if r["file"] == "paths_10k"),
                                  None),
        "fidelity_max_dev_mm": round(fidelity, 4),
        "tolerance_mm": 0.02,
        "max_bounds_error_mm": max((r["bounds_error_mm"] for r in results
                                    if r["bounds_error_mm"] is not None), default=None),
        "inside_first": f"{ok}/{pairs}",
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
