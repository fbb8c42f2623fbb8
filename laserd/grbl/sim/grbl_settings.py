"""The controller's ``$`` settings, as GRBL 1.1h keeps them in EEPROM.

Values are held as floats keyed by setting number; integer-valued settings are printed
without decimals, the others with three, exactly as ``$$`` does on real hardware, so the
link's parser meets the same text. Validation returns GRBL's own error codes so a sender
that writes a bad value sees what a real board would answer.
"""

from __future__ import annotations

from dataclasses import dataclass

# Error codes used here (GRBL 1.1 doc/csv/error_codes_en_US.csv).
ERR_INVALID_STATEMENT = 3
ERR_NEGATIVE_VALUE = 4
ERR_STEP_PULSE_MIN = 6
ERR_SOFT_LIMIT_NEEDS_HOMING = 10

# Settings printed as integers (masks, booleans, milliseconds, spindle values with 0 decimals).
INTEGER_SETTINGS = frozenset({0, 1, 2, 3, 4, 5, 6, 10, 13, 20, 21, 22, 23, 26, 30, 31, 32})


@dataclass(frozen=True)
class LaserMachineDefaults:
    """Defaults of a typical diode/CO2 gantry running GRBL 1.1h in laser mode."""

    max_rate_xy_mm_min: float = 6000.0
    max_rate_z_mm_min: float = 1000.0
    accel_xy_mm_s2: float = 1000.0
    accel_z_mm_s2: float = 100.0
    travel_z_mm: float = 50.0


def default_settings(bed_mm: tuple[float, float]) -> dict[int, float]:
    """The factory settings of the simulated board; ``$130``/``$131`` follow the bed."""
    d = LaserMachineDefaults()
    return {
        0: 10,  # step pulse, microseconds
        1: 25,  # step idle delay, milliseconds
        2: 0,  # step port invert mask
        3: 0,  # direction port invert mask
        4: 0,  # step enable invert
        5: 0,  # limit pins invert
        6: 0,  # probe pin invert
        10: 3,  # status report: MPos (bit 0) and buffer state (bit 1)
        11: 0.010,  # junction deviation, mm
        12: 0.002,  # arc tolerance, mm
        13: 0,  # report inches
        20: 0,  # soft limits
        21: 0,  # hard limits
        22: 0,  # homing cycle
        23: 0,  # homing direction invert mask
        24: 25.0,  # homing locate feed, mm/min
        25: 500.0,  # homing search seek, mm/min
        26: 250,  # homing switch debounce, milliseconds
        27: 1.0,  # homing pull-off, mm
        30: 1000,  # maximum spindle speed (S for full laser power)
        31: 0,  # minimum spindle speed
        32: 1,  # laser mode
        100: 80.0,  # X steps/mm
        101: 80.0,
        102: 400.0,
        110: d.max_rate_xy_mm_min,
        111: d.max_rate_xy_mm_min,
        112: d.max_rate_z_mm_min,
        120: d.accel_xy_mm_s2,
        121: d.accel_xy_mm_s2,
        122: d.accel_z_mm_s2,
        130: float(bed_mm[0]),
        131: float(bed_mm[1]),
        132: d.travel_z_mm,
    }


def format_setting(number: int, value: float) -> str:
    """One ``$$`` line: ``$30=1000`` or ``$110=6000.000``."""
    if number in INTEGER_SETTINGS:
        return f"${number}={int(value)}"
    return f"${number}={value:.3f}"


def validate_setting(settings: dict[int, float], number: int, value: float) -> int:
    """0 when ``$number=value`` may be stored, else the GRBL error code a board answers."""
    if number not in settings:
        return ERR_INVALID_STATEMENT
    if value < 0:
        return ERR_NEGATIVE_VALUE
    if number == 0 and value < 3:
        return ERR_STEP_PULSE_MIN
    if number == 20 and int(value) and not int(settings[22]):
        return ERR_SOFT_LIMIT_NEEDS_HOMING
    return 0


def store_setting(settings: dict[int, float], number: int, value: float) -> None:
    """Store a validated value; integer settings are truncated as GRBL's EEPROM code does."""
    settings[number] = float(int(value)) if number in INTEGER_SETTINGS else float(value)
    # GRBL clears soft limits when homing is switched off (they need a homed origin).
    if number == 22 and not int(value):
        settings[20] = 0.0
