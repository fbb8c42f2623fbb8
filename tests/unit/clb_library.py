"""A generated LightBurn library of realistic size, with the laserd materials it must become.

The expected materials are computed here from the generated values directly (not through the
importer), so a test comparing the importer's answer with them checks the mapping itself.
Deterministic: a fixed seed per call.
"""

from __future__ import annotations

import random
from typing import Any
from xml.sax.saxutils import quoteattr

WOODS = ["Birch", "Basswood", "Poplar", "Walnut", "Oak", "Cherry", "Maple", "Bamboo"]
KINDS = ["plywood", "MDF", "veneer", "acrylic", "leather", "card", "cork", "felt", "slate"]
DITHERS = {
    "threshold": "threshold",
    "ordered": "ordered",
    "dither": "floyd_steinberg",
    "atkinson": "atkinson",
    "jarvis": "jarvis",
    "stucki": "stucki",
}


def _maybe(rng: random.Random, fields: list[tuple[str, str]], name: str, value: str) -> None:
    """LightBurn leaves a field at its default out: do the same for about a third of them."""
    if rng.random() > 0.33:
        fields.append((name, value))


def generate(
    materials: int = 60, entries_per_material: int = 8, seed: int = 15
) -> tuple[bytes, list[dict[str, Any]]]:
    rng = random.Random(seed)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<LightBurnLibrary DisplayName="Gen">']
    expected: list[dict[str, Any]] = []
    for i in range(materials):
        name = f"{WOODS[i % len(WOODS)]} {KINDS[i % len(KINDS)]} #{i}"
        lines.append(f"  <Material name={quoteattr(name)}>")
        for j in range(entries_per_material):
            thickness = rng.choice([-1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 3.175])
            desc = f"Setting {j} – {rng.choice(['dark', 'light', 'clean', 'fast'])}"
            kind = rng.choice(["Cut", "Scan", "Scan+Cut", "Image"])
            speed = round(rng.uniform(1, 500), 2)  # mm/s, as LightBurn writes it
            power = round(rng.uniform(1, 100), 1)
            fields: list[tuple[str, str]] = [("index", "0"), ("name", f"C{j:02d}")]
            fields.append(("speed", repr(speed)))
            fields.append(("maxPower", repr(power)))
            passes = rng.randint(1, 6)
            _maybe(rng, fields, "numPasses", str(passes)) if passes != 1 else None
            passes = passes if ("numPasses", str(passes)) in fields else 1
            blower = rng.random() < 0.5
            fields.append(("runBlower", "1" if blower else "0"))
            interval = round(rng.uniform(0.03, 0.3), 3)
            overscan = round(rng.uniform(0, 5), 2)
            bidir = rng.random() < 0.7
            fields += [("interval", repr(interval)), ("overscan", repr(overscan))]
            fields.append(("bidir", "1" if bidir else "0"))
            op: dict[str, Any]
            if kind == "Image":
                lo = round(rng.uniform(0, power), 1)
                lb_dither = rng.choice(sorted(DITHERS))
                fields += [("minPower", repr(lo)), ("ditherMode", lb_dither)]
                tag = "CutSetting_Img"
                settings: dict[str, Any] = {
                    "image": {
                        "mode": "M4",
                        "power_min_pct": lo,
                        "power_max_pct": power,
                        "speed_mm_min": round(speed * 60, 4),
                        "passes": passes,
                        "air_assist": blower,
                        "line_interval_mm": interval,
                        "dither": DITHERS[lb_dither],
                        "threshold": 128,
                        "invert": False,
                        "overscan_mm": overscan,
                        "bidirectional": bidir,
                        "brightness": 0.0,
                        "contrast": 0.0,
                        "gamma": 1.0,
                    }
                }
            else:
                tag = "CutSetting"
                angle = float(rng.choice([0, 15, 45, 90]))
                cross = rng.random() < 0.3
                kerf = round(rng.uniform(0, 0.3), 3)
                tabs = rng.random() < 0.2
                tab_count = rng.randint(1, 6)
                tab_size = round(rng.uniform(0.2, 2), 2)
                fields += [("angle", repr(angle)), ("crossHatch", "1" if cross else "0")]
                fields += [("kerf", repr(kerf)), ("tabSize", repr(tab_size))]
                fields += [("tabCount", str(tab_count))]
                if tabs:
                    fields.append(("enableTabs", "1"))
                fields.append(("zOffset", "0.5"))  # no meaning here: reported, not mapped
                op = {
                    "speed_mm_min": round(speed * 60, 4),
                    "power_pct": power,
                    "passes": passes,
                    "air_assist": blower,
                    "kerf_mm": kerf,
                    "tabs": {"count": tab_count if tabs else 0, "width_mm": tab_size},
                    "fill": {
                        "interval_mm": interval,
                        "angle_deg": angle,
                        "crosshatch": cross,
                        "bidirectional": bidir,
                        "overscan_mm": overscan,
                    },
                }
                targets = {"Cut": ["cut"], "Scan": ["fill"], "Scan+Cut": ["fill", "cut"]}[kind]
                settings = {t: op for t in targets}
            lines.append(
                f"    <Entry Thickness={quoteattr(f'{thickness:.4f}')} Desc={quoteattr(desc)}"
                f" NoThickTitle={quoteattr(desc)}>"
            )
            lines.append(f'      <{tag} type="{kind}">')
            lines += [f"        <{k} Value={quoteattr(v)}/>" for k, v in fields]
            lines.append(f"      </{tag}>")
            lines.append("    </Entry>")
            expected.append(
                {
                    "name": name,
                    "thickness_mm": None if thickness < 0 else thickness,
                    "description": desc,
                    "laser_type": None,
                    "settings": settings,
                }
            )
        lines.append("  </Material>")
    lines.append("</LightBurnLibrary>")
    return ("\n".join(lines) + "\n").encode(), expected
