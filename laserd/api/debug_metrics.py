"""Debug-only readings for load, fault and memory benchmarks that run ``laserd serve`` as a child.

A benchmark outside the process cannot see the simulated controller's record (did the planner
run empty? did the receive buffer overflow? is the beam off?), the laser-enable output, or how
late the event loop runs its callbacks. These routes expose exactly that, read-only, and only
with ``[server] debug = true`` (``debug_only``) and for admins: they are measuring instruments,
never part of the product's API.

The event-loop lag probe is a chain of ``call_later`` callbacks, not a task: each one notes how
late it ran against when it was due and schedules the next. Nothing is left pending when the
loop stops, it starts only when asked (``POST /debug/loop-lag``), stops by itself after the
requested duration, and keeps a bounded number of samples.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import tracemalloc
import weakref
from collections import deque
from typing import Any, TypedDict

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from laserd import errors
from laserd.api.routing import ApiRoutes
from laserd.auth.principal import Role
from laserd.keys import JOBS, SAFETY, SIMULATOR

log = logging.getLogger(__name__)

routes = ApiRoutes("debug")

#: Name of the simulated controller's thread (laserd.grbl.sim.runner).
SIM_THREAD_NAME = "grbl-sim"
#: Samples kept per probe run: 10 minutes at the default 5 ms interval.
MAX_SAMPLES = 120_000


class LoopLagProbe:
    """Measures how late the event loop runs a callback that is due every ``interval_s``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._stop_at = 0.0
        self.interval_s = 0.005
        self.samples_s: deque[float] = deque(maxlen=MAX_SAMPLES)
        self.started_at = 0.0
        #: (generation, seconds) of every garbage collection while the probe runs: a full
        #: collection stops every thread, the loop too, and shows up as lag with no slow
        #: callback to blame.
        self.gc_pauses: deque[tuple[int, float]] = deque(maxlen=MAX_SAMPLES)
        self._gc_started = 0.0

    @property
    def running(self) -> bool:
        return self._handle is not None

    def start(self, interval_s: float, duration_s: float) -> None:
        """(Re)start with a fresh set of samples."""
        self.stop()
        self.samples_s.clear()
        self.gc_pauses.clear()
        gc.callbacks.append(self._on_gc)
        self.interval_s = interval_s
        self.started_at = self._loop.time()
        self._stop_at = self.started_at + duration_s
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            self.gc_pauses.append((info["generation"], time.perf_counter() - self._gc_started))

    def _schedule(self) -> None:
        self._due = self._loop.time() + self.interval_s
        self._handle = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        now = self._loop.time()
        self.samples_s.append(max(0.0, now - self._due))
        if now >= self._stop_at:
            self._handle = None
            self.stop()
            return
        self._schedule()


_probes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLagProbe] = (
    weakref.WeakKeyDictionary()
)


def _probe() -> LoopLagProbe:
    """One probe per event loop (tests run several apps, each on its own loop)."""
    loop = asyncio.get_running_loop()
    probe = _probes.get(loop)
    if probe is None:
        probe = _probes[loop] = LoopLagProbe(loop)
    return probe


class LoopLagStart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    interval_ms: float = Field(5.0, ge=1, le=1000, description="how often the probe is due")
    duration_s: float = Field(300.0, gt=0, le=3600, description="the probe stops by itself")


class LoopLagOut(BaseModel):
    running: bool
    interval_ms: float
    samples: int
    elapsed_s: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    over_50ms: int = Field(description="callbacks that ran more than 50 ms late")
    gc_collections: int = Field(description="garbage collections while the probe ran")
    gc_full_collections: int = Field(description="of which generation 2 (full)")
    gc_max_pause_ms: float | None = Field(description="longest collection")
    gc_objects: list[int] = Field(description="objects tracked per generation now")
    gc_frozen: int = Field(description="objects moved out of the collector's sight")


class _LagSummary(TypedDict):
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    over_50ms: int


def _summary(samples_s: list[float]) -> _LagSummary:
    """Percentiles of a copy of the samples; sorted in an executor (up to 120k floats)."""
    if not samples_s:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None, "over_50ms": 0}
    ordered = sorted(samples_s)
    n = len(ordered)

    def pct(q: float) -> float:
        return round(ordered[min(n - 1, int(q * n))] * 1000.0, 3)

    return {
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(ordered[-1] * 1000.0, 3),
        "over_50ms": sum(1 for s in ordered if s > 0.050),
    }


async def _lag_out(probe: LoopLagProbe) -> LoopLagOut:
    loop = asyncio.get_running_loop()
    samples = list(probe.samples_s)
    summary = await loop.run_in_executor(None, _summary, samples)
    pauses = list(probe.gc_pauses)
    return LoopLagOut(
        running=probe.running,
        gc_collections=len(pauses),
        gc_full_collections=sum(1 for gen, _ in pauses if gen == 2),
        gc_max_pause_ms=round(max(p for _, p in pauses) * 1000, 3) if pauses else None,
        gc_objects=[len(gc.get_objects(generation=g)) for g in range(3)],
        gc_frozen=gc.get_freeze_count(),
        interval_ms=probe.interval_s * 1000.0,
        samples=len(samples),
        elapsed_s=round(loop.time() - probe.started_at, 3) if probe.started_at else 0.0,
        **summary,
    )


@routes.post(
    "/debug/loop-lag",
    role=Role.admin,
    body=LoopLagStart,
    response=LoopLagOut,
    debug_only=True,
    summary="Start (or restart) the event-loop lag probe (debug mode only)",
)
async def start_loop_lag(request: web.Request, body: LoopLagStart) -> LoopLagOut:
    probe = _probe()
    probe.start(body.interval_ms / 1000.0, body.duration_s)
    log.info("debug: loop-lag probe every %.1f ms for %.0f s", body.interval_ms, body.duration_s)
    return await _lag_out(probe)


@routes.get(
    "/debug/loop-lag",
    role=Role.admin,
    response=LoopLagOut,
    debug_only=True,
    summary="Event-loop lag since the probe started: p50, p99, max (debug mode only)",
)
async def read_loop_lag(request: web.Request) -> LoopLagOut:
    return await _lag_out(_probe())


class SimulatorOut(BaseModel):
    state: str
    laser_on: bool
    position_mm: list[float]
    lines_received: int
    lines_executed: int
    bytes_in: int
    bytes_out: int
    rx_overflows: int
    faults: list[str]
    errors: list[list[int]]
    alarms: list[int]
    resets: int
    banners: int
    blocks_executed: int
    planner_starved_s: float
    starvations: int
    thread_native_id: int | None = Field(
        description="OS thread id of the simulator, so a bench can tell its CPU from laserd's"
    )


@routes.get(
    "/debug/simulator",
    role=Role.admin,
    response=SimulatorOut,
    debug_only=True,
    errors=(404,),
    summary="The simulated controller's record: overflows, faults, starvation (debug mode only)",
)
async def read_simulator(request: web.Request) -> SimulatorOut:
    sim = request.app.get(SIMULATOR)
    if sim is None:
        raise errors.NotFound("No simulated controller is running.")
    # The live record, field by field: each read is atomic under the GIL. record_snapshot()
    # would copy two 100k-entry logs under the simulator's lock, on the loop, and the bench
    # would measure its own reading as event-loop lag.
    rec = sim.record
    return SimulatorOut(
        state=rec.state,
        laser_on=bool(sim.laser_on),
        position_mm=list(rec.position_mm),
        lines_received=rec.lines_received,
        lines_executed=rec.lines_executed,
        bytes_in=rec.bytes_in,
        bytes_out=rec.bytes_out,
        rx_overflows=rec.rx_overflows,
        faults=list(rec.faults[:20]),
        errors=[list(e) for e in rec.errors[:20]],
        alarms=list(rec.alarms[:20]),
        resets=rec.resets,
        banners=rec.banners,
        blocks_executed=rec.blocks_executed,
        planner_starved_s=round(rec.planner_starved_s, 4),
        starvations=rec.starvations,
        thread_native_id=next(
            (t.native_id for t in threading.enumerate() if t.name == SIM_THREAD_NAME), None
        ),
    )


class LaserEnableOut(BaseModel):
    present: bool = Field(description="a laser-enable output is configured")
    armed: bool = Field(description="the supervisor allows the laser")
    output_on: bool = Field(description="the pin is at its 'on' level right now")
    job_active: bool


@routes.get(
    "/debug/laser-enable",
    role=Role.admin,
    response=LaserEnableOut,
    debug_only=True,
    summary="The laser-enable output as the GPIO layer sees it (debug mode only)",
)
async def read_laser_enable(request: web.Request) -> LaserEnableOut:
    enable: Any = request.app[SAFETY].laser_enable
    jobs = request.app.get(JOBS)
    return LaserEnableOut(
        present=bool(enable.present),
        armed=bool(enable.armed),
        output_on=bool(enable.value),
        job_active=jobs is not None and jobs.active is not None,
    )


# --------------------------------------------------------------------------- Python heap growth

_heap_baseline: dict[str, tracemalloc.Snapshot] = {}


class HeapStart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    frames: int = Field(1, ge=1, le=25, description="stack frames kept per allocation")


class HeapLine(BaseModel):
    where: str
    size_diff_kb: float
    count_diff: int


class HeapOut(BaseModel):
    tracing: bool
    traced_kb: float
    peak_kb: float
    top: list[HeapLine] = Field(description="largest growth since the baseline, by line")


def _heap_diff(limit: int) -> list[HeapLine]:
    base = _heap_baseline.get("base")
    if base is None:
        return []
    now = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    stats = now.compare_to(base, "lineno")[:limit]
    return [
        HeapLine(
            where=str(s.traceback[0]),
            size_diff_kb=round(s.size_diff / 1024, 1),
            count_diff=s.count_diff,
        )
        for s in stats
    ]


@routes.post(
    "/debug/heap",
    role=Role.admin,
    body=HeapStart,
    response=HeapOut,
    debug_only=True,
    summary="Start tracing Python allocations and take the baseline (debug mode only)",
)
async def start_heap(request: web.Request, body: HeapStart) -> HeapOut:
    """Tracing slows every allocation: for a memory investigation, not for timing figures."""
    if not tracemalloc.is_tracing():
        tracemalloc.start(body.frames)
    loop = asyncio.get_running_loop()
    _heap_baseline["base"] = await loop.run_in_executor(None, tracemalloc.take_snapshot)
    traced, peak = tracemalloc.get_traced_memory()
    return HeapOut(tracing=True, traced_kb=round(traced / 1024, 1), peak_kb=round(peak / 1024, 1),
                   top=[])  # fmt: skip


@routes.get(
    "/debug/heap",
    role=Role.admin,
    response=HeapOut,
    debug_only=True,
    summary="Python allocations that grew since the baseline, by source line (debug mode only)",
)
async def read_heap(request: web.Request) -> HeapOut:
    if not tracemalloc.is_tracing():
        return HeapOut(tracing=False, traced_kb=0.0, peak_kb=0.0, top=[])
    top = await asyncio.get_running_loop().run_in_executor(None, _heap_diff, 15)
    traced, peak = tracemalloc.get_traced_memory()
    return HeapOut(
        tracing=True, traced_kb=round(traced / 1024, 1), peak_kb=round(peak / 1024, 1), top=top
    )
