"""Path order for short travel: greedy nearest neighbour, then 2-opt, never breaking precedence.

Each item is a polyline the beam follows in one go. A closed item may start at any of its
vertices (it ends where it starts); an open one may run either way. The greedy pass starts at
the current head position and repeatedly takes, among the items whose predecessors are all
done (inside-first: everything a closed cut contains is cut before it), the one whose nearest
entry point is closest. Candidates are ranked by the distance to their bounding box (a lower
bound, one numpy pass over all items), and only the closest few are measured exactly.

The improvement pass is 2-opt on the sequence: reversing a stretch of items reverses their
order and directions (a closed item's entry and exit coincide), which is allowed only when no
item in the stretch must precede another one in it. It runs in windows of neighbouring items
until nothing improves or the time budget is spent. Finally each closed item's start vertex
is chosen again, between its actual neighbours.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

#: Items measured exactly per greedy step (the rest are ranked by their bounding box).
CANDIDATES = 8
#: How far ahead 2-opt looks from each position.
WINDOW = 60


@dataclass(slots=True)
class Item:
    points: np.ndarray  # (N, 2)
    closed: bool
    #: Indices (into the item list) of the items that must come before this one.
    after: list[int] = field(default_factory=list)
    #: Items of a lower group come first when several are available (layer order).
    group: int = 0


@dataclass(slots=True)
class Step:
    """An item in the chosen order: run from vertex ``start`` (closed) or reversed (open)."""

    index: int
    start: int = 0
    reverse: bool = False


def oriented(item: Item, step: Step) -> np.ndarray:
    """The item's points in the order the beam follows them (closed rings repeat the start)."""
    pts = item.points
    if item.closed:
        s = step.start % len(pts)
        pts = np.vstack([pts[s:], pts[: s + 1]])
        return pts[::-1] if step.reverse else pts
    return pts[::-1] if step.reverse else pts


def _entry_exit(item: Item, step: Step) -> tuple[np.ndarray, np.ndarray]:
    pts = item.points
    if item.closed:
        p = pts[step.start % len(pts)]
        return p, p
    return (pts[-1], pts[0]) if step.reverse else (pts[0], pts[-1])


def order_items(
    items: list[Item], start: tuple[float, float], budget_s: float = 0.5
) -> list[Step]:
    """The order (with entries and directions) of ``items``, from the head at ``start``."""
    n = len(items)
    if n == 0:
        return []
    deadline = time.perf_counter() + budget_s
    steps = _greedy(items, np.asarray(start, dtype=np.float64))
    if n > 2:
        steps = _two_opt(items, steps, np.asarray(start, dtype=np.float64), deadline)
    _reseat_starts(items, steps, np.asarray(start, dtype=np.float64))
    return steps


def _greedy(items: list[Item], pos: np.ndarray) -> list[Step]:
    n = len(items)
    lo = np.array([it.points.min(axis=0) for it in items])
    hi = np.array([it.points.max(axis=0) for it in items])
    group = np.array([it.group for it in items])
    waiting = np.array([len(set(it.after)) for it in items])
    followers: list[list[int]] = [[] for _ in range(n)]
    for i, it in enumerate(items):
        for j in set(it.after):
            followers[j].append(i)
    available = waiting == 0
    done = np.zeros(n, dtype=bool)
    steps: list[Step] = []
    for _ in range(n):
        idx = np.flatnonzero(available)
        if idx.size == 0:  # a precedence cycle cannot come from nesting; be safe anyway
            idx = np.flatnonzero(~done)
        gmin = group[idx].min()
        idx = idx[group[idx] == gmin]
        dx = np.maximum(0.0, np.maximum(lo[idx, 0] - pos[0], pos[0] - hi[idx, 0]))
        dy = np.maximum(0.0, np.maximum(lo[idx, 1] - pos[1], pos[1] - hi[idx, 1]))
        bound = dx * dx + dy * dy
        if idx.size > CANDIDATES:
            pick = np.argpartition(bound, CANDIDATES)[:CANDIDATES]
            cand = idx[pick]
        else:
            cand = idx
        best: tuple[float, Step] | None = None
        for i in cand.tolist():
            step, d2 = _nearest_entry(items[i], i, pos)
            if best is None or d2 < best[0]:
                best = (d2, step)
        assert best is not None
        step = best[1]
        steps.append(step)
        i = step.index
        done[i] = True
        available[i] = False
        for f in followers[i]:
            waiting[f] -= 1
            if waiting[f] == 0 and not done[f]:
                available[f] = True
        pos = _entry_exit(items[i], step)[1]
    return steps


def _nearest_entry(item: Item, index: int, pos: np.ndarray) -> tuple[Step, float]:
    pts = item.points
    if item.closed:
        d2 = ((pts - pos) ** 2).sum(axis=1)
        k = int(np.argmin(d2))
        return Step(index, start=k), float(d2[k])
    d0 = float(((pts[0] - pos) ** 2).sum())
    d1 = float(((pts[-1] - pos) ** 2).sum())
    return (Step(index), d0) if d0 <= d1 else (Step(index, reverse=True), d1)


def _two_opt(
    items: list[Item], steps: list[Step], origin: np.ndarray, deadline: float
) -> list[Step]:
    n = len(steps)
    position = np.empty(n, dtype=np.int64)
    entries = np.empty((n, 2))
    exits = np.empty((n, 2))

    def refresh() -> None:
        for k, st in enumerate(steps):
            position[st.index] = k
            entries[k], exits[k] = _entry_exit(items[st.index], st)

    refresh()
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        for i in range(n - 1):
            if time.perf_counter() >= deadline:
                break
            prev = exits[i - 1] if i > 0 else origin
            j_hi = min(n, i + WINDOW)
            js = np.arange(i + 1, j_hi)
            # Reverse i..j: travel prev→entry(i) and exit(j)→entry(j+1) become
            # prev→exit(j) and entry(i)→entry(j+1).
            nxt = np.where((js + 1 < n)[:, None], entries[np.minimum(js + 1, n - 1)], np.nan)
            old = np.hypot(*(entries[i] - prev)) + np.nan_to_num(
                np.hypot(*(nxt - exits[js]).T), nan=0.0
            )
            new = np.hypot(*(exits[js] - prev).T) + np.nan_to_num(
                np.hypot(*(nxt - entries[i]).T), nan=0.0
            )
            gain = old - new
            for k in np.argsort(-gain)[:3].tolist():
                if gain[k] <= 1e-9:
                    break
                j = int(js[k])
                if _reversible(items, steps, position, i, j):
                    block = steps[i : j + 1][::-1]
                    for st in block:
                        st.reverse = not st.reverse
                    steps[i : j + 1] = block
                    refresh_range(items, steps, position, entries, exits, i, j)
                    improved = True
                    break
    return steps


def refresh_range(
    items: list[Item],
    steps: list[Step],
    position: np.ndarray,
    entries: np.ndarray,
    exits: np.ndarray,
    i: int,
    j: int,
) -> None:
    for k in range(i, j + 1):
        st = steps[k]
        position[st.index] = k
        entries[k], exits[k] = _entry_exit(items[st.index], st)


def _reversible(
    items: list[Item], steps: list[Step], position: np.ndarray, i: int, j: int
) -> bool:
    """No item in steps[i..j] has a predecessor also in that stretch, and no group mixes."""
    g = items[steps[i].index].group
    for k in range(i, j + 1):
        it = items[steps[k].index]
        if it.group != g:
            return False
        for a in it.after:
            if i <= position[a] <= j:
                return False
    return True


def _reseat_starts(items: list[Item], steps: list[Step], origin: np.ndarray) -> None:
    """Move each closed item's start to the vertex nearest its neighbours' exit and entry."""
    prev = origin
    for k, st in enumerate(steps):
        it = items[st.index]
        if it.closed:
            nxt = None
            if k + 1 < len(steps):
                nst = steps[k + 1]
                nxt = _entry_exit(items[nst.index], nst)[0]
                if items[nst.index].closed:
                    nxt = None  # its start moves too; the previous exit is what counts
            d = np.hypot(*(it.points - prev).T)
            if nxt is not None:
                d = d + np.hypot(*(it.points - nxt).T)
            st.start = int(np.argmin(d))
        prev = _entry_exit(it, st)[1]


def travel_length(items: list[Item], steps: list[Step], start: tuple[float, float]) -> float:
    """Beam-off distance of the order (straight moves between exits and entries)."""
    pos = np.asarray(start, dtype=np.float64)
    total = 0.0
    for st in steps:
        entry, exit_ = _entry_exit(items[st.index], st)
        total += float(np.hypot(*(entry - pos)))
        pos = exit_
    return total
