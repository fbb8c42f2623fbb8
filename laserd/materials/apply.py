"""Applying a material: copying its settings in, and telling later whether they still match.

A project's image settings or a design layer hold a *copy* of the material's values plus the
material's id. The copy is what runs (editing the library never changes a job behind the
maker's back); comparing the copy with the material's current values tells the UI whether
the settings were changed since, on either side.
"""

from __future__ import annotations

import math
from typing import Any

from laserd.materials.model import IMAGE_FIELDS, OperationSettings

#: Layer fields a material decides (the rest of a layer: id, colour, name, order, operation).
LAYER_FIELDS: tuple[str, ...] = tuple(OperationSettings.model_fields)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def image_into_laser(laser: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """A project's ``laser`` with the material's image settings copied over (placement kept)."""
    return {**laser, **{k: image[k] for k in IMAGE_FIELDS if k in image}}


def image_matches(laser: dict[str, Any], image: dict[str, Any] | None) -> bool:
    """Whether a project's ``laser`` still holds the material's image settings."""
    if image is None:
        return False
    return all(_same(laser.get(k), image.get(k)) for k in IMAGE_FIELDS)


def op_into_layer(layer: dict[str, Any], op: dict[str, Any], material_id: int) -> dict[str, Any]:
    """A design layer with a material operation's settings copied in and its id recorded."""
    return {**layer, **{k: op[k] for k in LAYER_FIELDS if k in op}, "material_id": material_id}


def layer_matches(layer: dict[str, Any], op: dict[str, Any] | None) -> bool:
    """Whether a design layer still holds the material operation's settings."""
    if op is None:
        return False
    return all(_same(layer.get(k), op.get(k)) for k in LAYER_FIELDS)
