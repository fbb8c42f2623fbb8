"""The starter library: shared materials for common 5–10 W diode and 40 W CO2 machines.

Seeded once, at the first start with an empty library (:func:`seed_if_new`); an admin may
delete or edit any entry, and ``POST /materials/starter`` puts back the ones that are missing.
Every entry is a *starting point*: lasers of the same rating differ (optical power, focus,
lens, air assist, wood batches), so each description asks for a test grid before real work.

Where the values come from (none is copied; each is a rounded, deliberately moderate value in
the range these public tables agree on):

- Diode (5–10 W optical, e.g. 10 W modules on xTool D1, Ortur LM2/LM3, Sculpfun S9/S10,
  Atomstack A5/X7 frames): the makers' published material parameter charts (xTool "material
  settings" support pages; Sculpfun S9 and Ortur LM2 Pro parameter tables; Atomstack's
  engraving/cutting reference sheet) and the LightBurn forum's diode material threads.
- CO2 40 W (K40-class tube, 12 mm lens): the K40 community's speed/power tables
  (everythinglasers / "K40 laser" wiki, K40 Whisperer's documentation examples) and the
  thickness-vs-speed rules of thumb in Epilog's and Trotec's material guides, scaled to 40 W.

Powers are % of the controller's ``$30``; speeds mm/min (LightBurn shows mm/s: divide by 60).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from laserd.materials.model import MaterialSettings
from laserd.store import materials as store

log = logging.getLogger(__name__)

VERIFY = "Starting point: burn a test grid on a scrap of your sheet and adjust before real work."
DIODE = "5–10 W diode (about 10 W optical)"
CO2 = "40 W CO2 (K40-class)"


@dataclass(frozen=True, slots=True)
class StarterMaterial:
    key: str
    name: str
    thickness_mm: float | None
    laser_type: str
    note: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        machine = DIODE if self.laser_type == "diode" else CO2
        return f"{machine}. {self.note} {VERIFY}"


def _op(speed: float, power: float, passes: int = 1, air: bool = True, **extra: Any) -> dict:
    return {"speed_mm_min": speed, "power_pct": power, "passes": passes, "air_assist": air, **extra}


def _fill(speed: float, power: float, interval: float = 0.1, **extra: Any) -> dict:
    return _op(speed, power, air=False, fill={"interval_mm": interval, **extra})


def _image(speed: float, lo: float, hi: float, dither: str, interval: float = 0.1) -> dict:
    return {
        "mode": "M4",
        "power_min_pct": lo,
        "power_max_pct": hi,
        "speed_mm_min": speed,
        "line_interval_mm": interval,
        "dither": dither,
        "overscan_mm": 2.0,
        "bidirectional": True,
    }


STARTER: tuple[StarterMaterial, ...] = (
    # ------------------------------------------------------------------ diode, 5–10 W
    StarterMaterial(
        "diode-plywood-3",
        "Birch plywood",
        3.0,
        "diode",
        "Cut in passes with air assist; engrave and photos at moderate power.",
        {
            "cut": _op(300, 100, passes=2),
            "score": _op(1500, 40, air=False),
            "fill": _fill(3000, 40),
            "image": _image(3000, 0, 60, "jarvis"),
        },
    ),
    StarterMaterial(
        "diode-basswood-3",
        "Basswood plywood",
        3.0,
        "diode",
        "Light, even wood: cuts faster than birch and shows photos well.",
        {
            "cut": _op(400, 100, passes=2),
            "fill": _fill(3000, 35),
            "image": _image(3000, 0, 50, "jarvis"),
        },
    ),
    StarterMaterial(
        "diode-mdf-3",
        "MDF",
        3.0,
        "diode",
        "Glue makes MDF slow to cut and smoky; keep air assist on.",
        {
            "cut": _op(200, 100, passes=3),
            "score": _op(1200, 50, air=False),
            "fill": _fill(3000, 50),
        },
    ),
    StarterMaterial(
        "diode-acrylic-black-3",
        "Cast acrylic, black (opaque)",
        3.0,
        "diode",
        "A blue diode passes through clear acrylic: only dark, opaque cast acrylic cuts.",
        {
            "cut": _op(150, 100, passes=4),
            "fill": _fill(2000, 60),
        },
    ),
    StarterMaterial(
        "diode-leather-2",
        "Vegetable-tanned leather",
        2.0,
        "diode",
        "Engraves dark at low power; chrome-tanned leather gives off toxic fumes: do not use.",
        {
            "cut": _op(300, 100, passes=2),
            "fill": _fill(3000, 25),
            "image": _image(3000, 0, 30, "jarvis"),
        },
    ),
    StarterMaterial(
        "diode-card-03",
        "Card (300 g/m²)",
        0.3,
        "diode",
        "Thin card cuts in one pass; lower the power for creases.",
        {
            "cut": _op(600, 70, air=True),
            "score": _op(1500, 25, air=False),
        },
    ),
    StarterMaterial(
        "diode-slate",
        "Slate",
        None,
        "diode",
        "Natural slate tiles and coasters: engraving lightens the stone.",
        {
            "fill": _fill(3000, 80),
            "image": _image(2500, 0, 90, "jarvis"),
        },
    ),
    StarterMaterial(
        "diode-anodised-aluminium",
        "Anodised aluminium (marking)",
        None,
        "diode",
        "Removes the dye of the anodised layer; bare aluminium does not mark.",
        {
            "fill": _fill(1500, 90, interval=0.05),
            "image": _image(1500, 0, 90, "threshold", interval=0.05),
        },
    ),
    # ------------------------------------------------------------------ CO2, 40 W
    StarterMaterial(
        "co2-plywood-3",
        "Birch plywood",
        3.0,
        "co2",
        "One pass with air assist; engrave fast at low power.",
        {
            "cut": _op(900, 55),
            "score": _op(3000, 15, air=True),
            "fill": _fill(18000, 20),
            "image": _image(15000, 0, 25, "jarvis"),
        },
    ),
    StarterMaterial(
        "co2-mdf-3",
        "MDF",
        3.0,
        "co2",
        "Cuts in one pass; edges come out dark.",
        {
            "cut": _op(720, 60),
            "fill": _fill(18000, 25),
        },
    ),
    StarterMaterial(
        "co2-acrylic-cast-3",
        "Cast acrylic",
        3.0,
        "co2",
        "Cast (not extruded) acrylic: flame-polished edges when cut, frosted white when engraved.",
        {
            "cut": _op(600, 65),
            "score": _op(3000, 15),
            "fill": _fill(18000, 20, interval=0.08),
        },
    ),
    StarterMaterial(
        "co2-acrylic-cast-5",
        "Cast acrylic",
        5.0,
        "co2",
        "Thicker sheet: slower, check the bottom edge for melt-back.",
        {"cut": _op(300, 70)},
    ),
    StarterMaterial(
        "co2-leather-2",
        "Vegetable-tanned leather",
        2.0,
        "co2",
        "Chrome-tanned leather gives off toxic fumes: do not use.",
        {
            "cut": _op(900, 40),
            "fill": _fill(18000, 15),
            "image": _image(15000, 0, 18, "jarvis"),
        },
    ),
    StarterMaterial(
        "co2-card-03",
        "Card (300 g/m²)",
        0.3,
        "co2",
        "Card burns easily: keep air assist on and never leave the machine.",
        {
            "cut": _op(1200, 20),
            "score": _op(3000, 10, air=False),
        },
    ),
    StarterMaterial(
        "co2-slate",
        "Slate",
        None,
        "co2",
        "Natural slate: a high-power pass gives a bright, pale mark.",
        {
            "fill": _fill(15000, 30),
            "image": _image(15000, 0, 35, "jarvis"),
        },
    ),
    StarterMaterial(
        "co2-anodised-aluminium",
        "Anodised aluminium (marking)",
        None,
        "co2",
        "Bleaches the anodised layer; bare aluminium does not mark.",
        {"fill": _fill(18000, 25, interval=0.05)},
    ),
)


def starter_rows() -> list[dict[str, Any]]:
    """The starter library as store rows (validated: a typo here fails the unit tests)."""
    return [
        {
            "owner_id": None,
            "shared": True,
            "name": m.name,
            "thickness_mm": m.thickness_mm,
            "description": m.description,
            "laser_type": m.laser_type,
            "settings": MaterialSettings.model_validate(m.settings).to_json(),
            "starter_key": m.key,
        }
        for m in STARTER
    ]


async def restore(conn: aiosqlite.Connection) -> int:
    """Put back the starter entries that are missing; edited ones are left as they are."""
    have = await store.starter_keys(conn)
    missing = [row for row in starter_rows() if row["starter_key"] not in have]
    if missing:
        await store.insert_many(conn, missing)
    return len(missing)


async def seed_if_new(conn: aiosqlite.Connection) -> int:
    """At start: the starter library, once in the life of the database."""
    if await store.starter_seeded(conn):
        return 0
    created = await restore(conn)
    await store.mark_starter_seeded(conn)
    log.info("material library: %d starter materials added", created)
    return created

