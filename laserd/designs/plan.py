"""Planning: from a placed design to the ordered runs the writer turns into G-code.

Layer order: fill and image layers first, then score, then cut (within an operation by the
layers' ``order``, then id), so engraving and marking happen while the sheet is still whole.
All cut layers are planned together, because the inside-first rule holds across layers: a
path inside a closed cut (any cut layer) is cut, all passes, before it. Lower ``order``
cut layers go first wherever the rule leaves a choice.

Per operation:

- **cut**: closed paths offset by half the kerf (outward for outer contours, inward for holes,
  by nesting depth), ordered (:mod:`laserd.designs.order`), each path's passes one after the
  other (so a part is free only after its last pass), then tabs cut into closed paths.
- **score**: ordered for short travel; the whole layer repeated per pass.
- **fill**: the layer's closed shapes hatched together (:mod:`laserd.designs.hatch`),
  bidirectional or not, optional cross-hatch; repeated per pass.
- **image**: handed to the raster pipeline by :mod:`laserd.designs.convert`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from laserd.designs.cutting import apply_tabs, containers, offset_closed
from laserd.designs.geometry import Design, ImageItem, Path
from laserd.designs.hatch import hatch_lines
from laserd.designs.order import Item, order_items, oriented
from laserd.schemas.designs import OPERATION_RANK, LayerSettings, Operation


@dataclass(slots=True)
class Run:
    """Consecutive work of one layer: polylines burned in this order, travel in between.

    ``hatch`` runs hold two-point scan lines that the writer extends by the layer's overscan
    (beam off). ``image`` runs hold one image for the raster pipeline.
    """

    layer: LayerSettings
    polylines: list[np.ndarray] = field(default_factory=list)
    hatch: bool = False
    image: ImageItem | None = None


@dataclass(slots=True)
class Plan:
    runs: list[Run]
    warnings: list[str]
    #: Beam-off distance between the burned polylines (straight moves), before overscan.
    travel_mm: float = 0.0


def plan_design(
    design: Design,
    *,
    tolerance_mm: float = 0.02,
    start: tuple[float, float] = (0.0, 0.0),
    order_budget_s: float = 0.5,
    optimise: bool = True,
) -> Plan:
    """Order and shape the work of a placed ``design``. ``optimise=False`` keeps document
    order and directions (the benchmark's baseline), still inside-first."""
    warnings: list[str] = []
    runs: list[Run] = []
    pos = np.asarray(start, dtype=np.float64)
    layers, by_layer, images_by_layer = _work_by_layer(design, warnings)
    cut_layers = [lay for lay in layers if lay.operation is Operation.cut]
    queue = list(layers)
    while queue:
        layer = queue.pop(0)
        if optimise and layer.operation is Operation.score:
            # Among score layers of the same order, start with the one nearest the head.
            peers = [layer] + [q for q in queue
                               if q.operation is Operation.score and q.order == layer.order]
            best = min(peers, key=lambda lay: _distance(by_layer.get(lay.id, []), pos))
            if best is not layer:
                queue.remove(best)
                queue.insert(0, layer)
                layer = best
        if layer.operation is Operation.image:
            for im in images_by_layer.get(layer.id, []):
                runs.append(Run(layer, image=im))
                pos = im.corners()[2]
        elif layer.operation is Operation.fill:
            run = _fill_run(layer, by_layer.get(layer.id, []), warnings)
            if run is not None:
                runs.append(run)
                pos = run.polylines[-1][-1]
        elif layer.operation is Operation.score:
            paths = by_layer.get(layer.id, [])
            if not paths:
                continue
            items = [Item(p.points, p.closed) for p in paths]
            steps = _order(items, pos, order_budget_s, optimise)
            lines = [oriented(items[s.index], s) for s in steps]
            runs.append(Run(layer, [ln for _ in range(layer.passes) for ln in lines]))
            pos = lines[-1][-1]
    if cut_layers:
        runs.extend(_cut_runs(cut_layers, by_layer, pos, tolerance_mm, order_budget_s,
                              optimise, warnings))  # fmt: skip
    return Plan(runs, warnings)


def _work_by_layer(
    design: Design, warnings: list[str]
) -> tuple[list[LayerSettings], dict[int, list[Path]], dict[int, list[ImageItem]]]:
    """The layers that burn, in burning order (operation, then the user's order), and each
    one's paths (a line drawn twice on a cut or score layer only once) and images."""
    by_layer: dict[int, list[Path]] = {}
    for p in design.paths:
        by_layer.setdefault(p.layer, []).append(p)
    layers = sorted(
        (lay for lay in design.layers if lay.operation is not Operation.off),
        key=lambda lay: (OPERATION_RANK[lay.operation], lay.order, lay.id),
    )
    line_work = {lay.id for lay in layers if lay.operation in (Operation.cut, Operation.score)}
    duplicates = 0
    for lid in line_work & by_layer.keys():
        by_layer[lid], dropped = _without_duplicates(by_layer[lid])
        duplicates += dropped
    if duplicates:
        warnings.append(
            f"{duplicates} duplicate path(s) (the same line drawn twice on one layer) are "
            "burned once"
        )
    images_by_layer: dict[int, list[ImageItem]] = {}
    for im in design.images:
        images_by_layer.setdefault(im.layer, []).append(im)
    return layers, by_layer, images_by_layer


def _canonical(p: Path) -> bytes:
    """The same key for the same line, wherever it starts and whichever way it runs (1 µm)."""
    q = np.rint(p.points * 1000.0).astype(np.int64)
    if p.closed and len(q) > 1:
        forms = []
        for ring in (q, q[::-1]):
            k = int(np.lexsort((ring[:, 1], ring[:, 0]))[0])
            forms.append(np.roll(ring, -k, axis=0).tobytes())
        return b"c" + min(forms)
    return b"o" + min(q.tobytes(), q[::-1].tobytes())


def _without_duplicates(paths: list[Path]) -> tuple[list[Path], int]:
    seen: set[bytes] = set()
    kept = []
    for p in paths:
        key = _canonical(p)
        if key not in seen:
            seen.add(key)
            kept.append(p)
    return kept, len(paths) - len(kept)


def _distance(paths: list[Path], pos: np.ndarray) -> float:
    """How far the head at ``pos`` is from the nearest place any of ``paths`` can start."""
    best = np.inf
    for p in paths:
        pts = p.points if p.closed else p.points[[0, -1]]
        if len(pts):
            best = min(best, float(np.min(np.hypot(*(pts - pos).T))))
    return float(best)


def _order(items: list[Item], pos: np.ndarray, budget: float, optimise: bool) -> list:
    from laserd.designs.order import Step

    if optimise:
        return order_items(items, (float(pos[0]), float(pos[1])), budget)
    # Document order: each path as drawn, but still inside-first (a stable topological sort).
    done: set[int] = set()
    out: list[Step] = []
    pending = list(range(len(items)))
    while pending:
        rest = []
        for i in pending:
            if all(a in done for a in items[i].after):
                out.append(Step(i))
                done.add(i)
            else:
                rest.append(i)
        if len(rest) == len(pending):
            out.extend(Step(i) for i in rest)
            break
        pending = rest
    return out


def _fill_run(layer: LayerSettings, paths: list[Path], warnings: list[str]) -> Run | None:
    closed = [p for p in paths if p.closed and len(p.points) >= 3]
    if not closed:
        if paths:
            warnings.append(
                f"layer {layer.name or layer.id}: fill needs closed shapes; it has only open paths"
            )
        return None
    f = layer.fill
    angles = [f.angle_deg] + ([f.angle_deg + 90.0] if f.crosshatch else [])
    lines: list[np.ndarray] = []
    for angle in angles:
        rows = hatch_lines(closed, f.interval_mm, angle)
        for k, row in enumerate(rows):
            if f.bidirectional and k % 2 == 1:
                lines.extend(np.vstack([b, a]) for a, b in reversed(row))
            else:
                lines.extend(np.vstack([a, b]) for a, b in row)
    if not lines:
        warnings.append(
            f"layer {layer.name or layer.id}: the shapes are narrower than one fill interval "
            f"({f.interval_mm:g} mm); nothing to fill"
        )
        return None
    return Run(layer, [ln for _ in range(layer.passes) for ln in lines], hatch=True)


def _with_kerf(
    paths: list[Path],
    owner: list[LayerSettings],
    anc: list[list[int]],
    tol: float,
    warnings: list[str],
) -> list[np.ndarray]:
    """Each cut's polyline with its layer's kerf: outer contours (even depth among closed
    cuts) grow by half the kerf, holes shrink; open cuts stay as drawn."""
    shapes: list[np.ndarray] = []
    for k, p in enumerate(paths):
        kerf = owner[k].kerf_mm
        if not p.closed or kerf <= 0 or len(p.points) < 3:
            shapes.append(p.points)
            continue
        depth = sum(1 for a in anc[k] if paths[a].closed)
        delta = kerf / 2.0 if depth % 2 == 0 else -kerf / 2.0
        rings = offset_closed(p.points, delta, tol)
        if not rings:
            warnings.append(
                f"{p.source or 'a closed cut'} is smaller than the kerf ({kerf:g} mm) "
                "and is cut without offset"
            )
            shapes.append(p.points)
            continue
        shapes.append(max(rings, key=lambda r: float(np.ptp(r[:, 0]) + np.ptp(r[:, 1]))))
    return shapes


def _cut_runs(
    layers: list[LayerSettings],
    by_layer: dict[int, list[Path]],
    pos: np.ndarray,
    tol: float,
    budget: float,
    optimise: bool,
    warnings: list[str],
) -> list[Run]:
    paths: list[Path] = []
    owner: list[LayerSettings] = []
    for layer in layers:
        for p in by_layer.get(layer.id, []):
            if len(p.points) >= 2 or (p.closed and len(p.points) >= 1):
                paths.append(p)
                owner.append(layer)
    if not paths:
        return []
    anc = containers([p.points for p in paths], [p.closed for p in paths])
    shapes = _with_kerf(paths, owner, anc, tol, warnings)
    ranks = {o: r for r, o in enumerate(sorted({lay.order for lay in layers}))}
    items = [
        Item(shapes[k], paths[k].closed, after=[], group=ranks[owner[k].order])
        for k in range(len(paths))
    ]
    for k, ancestors in enumerate(anc):
        for a in ancestors:
            items[a].after.append(k)  # what lies inside a closed cut comes before it
    steps = _order(items, pos, budget, optimise)
    runs: list[Run] = []
    skipped_tabs = 0
    for st in steps:
        layer = owner[st.index]
        pts = oriented(items[st.index], st)
        pieces = [pts]
        if items[st.index].closed and layer.tabs.count > 0:
            cut = apply_tabs(pts[:-1], layer.tabs.count, layer.tabs.width_mm)
            if cut is None:
                skipped_tabs += 1
            else:
                pieces = cut
        if not runs or runs[-1].layer.id != layer.id:
            runs.append(Run(layer))
        for _ in range(layer.passes):
            runs[-1].polylines.extend(pieces)
    if skipped_tabs:
        warnings.append(
            f"{skipped_tabs} closed cut(s) are too short for their tabs and are cut whole"
        )
    return runs
