"""``laserd simulate``: run a simulated controller until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING

from .runner import SimulatedGrbl

if TYPE_CHECKING:
    from laserd.settings import Settings

log = logging.getLogger(__name__)

SIM_LINK_SUBDIR = "sim"


def simulator_for(settings: Settings) -> SimulatedGrbl:
    """A simulator shaped like the configured machine, its port link under the state folder."""
    link_dir = settings.storage.state_dir / SIM_LINK_SUBDIR
    link_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return SimulatedGrbl(
        time_scale=settings.simulator.time_scale,
        baudrate=settings.machine.baudrate,
        bed_mm=(settings.machine.bed_mm.x, settings.machine.bed_mm.y),
        rx_buffer_bytes=settings.machine.rx_buffer_bytes,
        link_dir=link_dir,
    )


def run_simulator_cli(settings: Settings) -> int:
    """Start the simulator, print its port path (one line on stdout), run until a signal."""
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping the simulator", signum)
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    sim = simulator_for(settings)
    try:
        path = sim.start()
        print(path, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
