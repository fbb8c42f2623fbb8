"""The simulated GRBL controller, as the rest of laserd imports it.

The implementation lives in :mod:`laserd.grbl.sim` (split by concern: G-code parsing,
kinematics, the controller state machine, the pty runner); this module is the stable name.
"""

from laserd.grbl.sim import GrblError, SimRecord, SimulatedGrbl, run_simulator_cli
from laserd.grbl.sim.cli import simulator_for

__all__ = ["GrblError", "SimRecord", "SimulatedGrbl", "run_simulator_cli", "simulator_for"]
