"""The project's ``laser`` settings: defaults, ranges, cross-field checks, sizing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from laserd.imaging.laser_settings import Dither, LaserMode, LaserSettings


def test_defaults_are_safe_and_complete() -> None:
    laser = LaserSettings()
    assert laser.mode is LaserMode.M4
    assert laser.power_min_pct == 0 and laser.power_max_pct == 100
    assert laser.passes == 1 and laser.air_assist is False
    assert laser.dither is Dither.grayscale and laser.power_levels == 256
    assert laser.origin_mm.x == 0 and laser.origin_mm.y == 0
    dumped = LaserSettings.model_validate(laser.model_dump(mode="json"))
    assert dumped == laser


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("power_max_pct", 101),
        ("power_min_pct", -1),
        ("passes", 0),
        ("passes", 51),
        ("threshold", 256),
        ("speed_mm_min", 0),
        ("line_interval_mm", 0),
        ("dither", "sepia"),
        ("mode", "M5"),
        ("power_levels", 1),
        ("gamma", 0),
        ("width_mm", -5),
        ("origin_mm", {"x": 1, "z": 2}),
        ("colour", "red"),
    ],
)
def test_out_of_range_and_unknown_fields_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        LaserSettings.model_validate({field: value})
    assert info.value.errors()[0]["loc"][0] == field


def test_min_power_cannot_exceed_max() -> None:
    with pytest.raises(ValidationError, match="power_min_pct"):
        LaserSettings(power_min_pct=60, power_max_pct=40)
    assert LaserSettings(power_min_pct=40, power_max_pct=40).power_min_pct == 40


def test_size_smaller_than_one_line_is_refused() -> None:
    with pytest.raises(ValidationError, match="width_mm"):
        LaserSettings(width_mm=0.05, line_interval_mm=0.1)


def test_size_px_keeps_aspect_when_one_side_is_given() -> None:
    assert LaserSettings().size_px(300, 200) == (300, 200)
    assert LaserSettings(width_mm=60, line_interval_mm=0.2).size_px(300, 200) == (300, 200)
    assert LaserSettings(height_mm=10, line_interval_mm=0.1).size_px(300, 200) == (150, 100)
    both = LaserSettings(width_mm=10, height_mm=30, line_interval_mm=0.5)
    assert both.size_px(300, 200) == (20, 60)
