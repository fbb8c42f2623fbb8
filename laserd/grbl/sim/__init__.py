"""A simulated GRBL 1.1h controller on a pseudo-terminal (see DESIGN.md "Simulator").

``core`` is the controller logic without I/O, ``runner`` puts it on a pty in its own thread
with baud-rate pacing, ``cli`` serves ``laserd simulate``.
"""

from .block_parser import GrblError
from .cli import run_simulator_cli
from .record import SimRecord
from .runner import LINK_NAME, SimulatedGrbl

__all__ = ["LINK_NAME", "GrblError", "SimRecord", "SimulatedGrbl", "run_simulator_cli"]
