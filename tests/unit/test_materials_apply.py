"""Applying a material: what is copied, what is kept, and when the copy no longer matches."""

from __future__ import annotations

from laserd.imaging.laser_settings import LaserSettings
from laserd.materials.apply import image_into_laser, image_matches, layer_matches, op_into_layer
from laserd.materials.model import IMAGE_FIELDS, ImageSettings, OperationSettings
from laserd.schemas.designs import LayerSettings, Operation, layer_defaults


def test_image_settings_replace_the_material_fields_and_keep_the_placement() -> None:
    laser = LaserSettings(width_mm=80, origin_mm={"x": 5, "y": 6}, travel_mm_min=9000).model_dump(
        mode="json"
    )
    image = ImageSettings(power_max_pct=42, dither="atkinson", speed_mm_min=2500).model_dump(
        mode="json"
    )
    out = image_into_laser(laser, image)
    assert LaserSettings.model_validate(out)  # still a valid project laser
    assert {k: out[k] for k in IMAGE_FIELDS} == image
    assert out["width_mm"] == 80 and out["origin_mm"] == {"x": 5, "y": 6}
    assert out["travel_mm_min"] == 9000
    assert image_matches(out, image)
    out["power_max_pct"] = 42.0000000001  # float noise from a round trip is no change
    assert image_matches(out, image)
    out["power_max_pct"] = 43
    assert not image_matches(out, image)
    assert not image_matches(out, None)
    out = image_into_laser(out, image)
    out["invert"] = True
    assert not image_matches(out, image)


def test_an_operation_copied_into_a_layer_keeps_the_layer_and_records_the_material() -> None:
    layer = layer_defaults(3, Operation.cut, color="#ff0000", name="outline", order=2).model_dump(
        mode="json"
    )
    op = OperationSettings(
        speed_mm_min=420, power_pct=85, passes=3, air_assist=True, kerf_mm=0.15,
        tabs={"count": 2, "width_mm": 0.8},
    ).model_dump(mode="json")  # fmt: skip
    out = op_into_layer(layer, op, material_id=17)
    valid = LayerSettings.model_validate(out)
    assert (valid.id, valid.color, valid.name, valid.order, valid.operation) == (
        3, "#ff0000", "outline", 2, Operation.cut
    )  # fmt: skip
    assert valid.material_id == 17 and valid.speed_mm_min == 420 and valid.tabs.count == 2
    assert layer_matches(out, op)
    out["passes"] = 4
    assert not layer_matches(out, op)
    out = op_into_layer(out, op, material_id=17)
    out["fill"] = {**out["fill"], "crosshatch": True}
    assert not layer_matches(out, op)
    assert not layer_matches(out, None)
    # booleans are not numbers: air assist off is no "0 %"
    out = op_into_layer(out, op, material_id=17)
    out["air_assist"] = 1
    assert not layer_matches(out, op)
