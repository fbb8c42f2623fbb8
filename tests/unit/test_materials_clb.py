"""LightBurn .clb: the mapping on a real-sized generated library, the round trip, hostile XML."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from laserd.materials import clb, clb_export
from laserd.materials.starter import starter_rows
from tests.unit.clb_library import generate


def _floats(value: Any) -> Any:
    """Numbers as floats (JSON has one number type; 3 and 3.0 are the same value)."""
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _key(m: dict[str, Any]) -> str:
    fields = ("name", "thickness_mm", "description", "settings")
    return json.dumps(_floats({k: m[k] for k in fields}), sort_keys=True)


def _sorted(items: list[dict[str, Any]]) -> list[str]:
    return sorted(_key(m) for m in items)


def test_generated_library_maps_every_field() -> None:
    data, expected = generate()
    assert len(expected) == 480
    out = clb.import_library(data)
    assert out.skipped == []
    assert _sorted(out.items) == _sorted(expected)
    # zOffset has no meaning here: counted, once per vector entry that had it
    assert set(out.ignored_fields) == {"zOffset"}


def test_round_trip_clb_laserd_clb_laserd_keeps_every_mapped_field() -> None:
    data, expected = generate()
    first = clb.import_library(data).items
    exported = clb_export.export_library(first)
    second = clb.import_library(exported)
    assert second.skipped == [] and not second.ignored_fields
    assert _sorted(second.items) == _sorted(first) == _sorted(expected)
    # and once more: the exported file is stable
    assert clb_export.export_library(second.items) == exported


def test_laserd_materials_with_several_operations_and_scores_round_trip() -> None:
    rows = starter_rows()
    again = clb.import_library(clb_export.export_library(rows)).items
    assert _sorted(again) == _sorted(rows)


def test_export_escapes_text_and_marks_no_thickness() -> None:
    rows = [
        {
            "name": 'Acrylic "clear" <3mm> & co',
            "thickness_mm": None,
            "description": "",
            "settings": {"score": {"speed_mm_min": 600, "power_pct": 10}},
        }
    ]
    data = clb_export.export_library(rows)
    assert b'Thickness="-1.0000"' in data and b"&quot;clear&quot; &lt;3mm&gt; &amp; co" in data
    assert b'type="Cut"' in data and b'Desc="[score]"' in data
    back = clb.import_library(data).items
    assert back[0]["name"] == rows[0]["name"] and list(back[0]["settings"]) == ["score"]
    assert back[0]["description"] == "" and back[0]["thickness_mm"] is None


@pytest.mark.parametrize(
    "data, words",
    [
        (b'<!DOCTYPE x [<!ENTITY a "b">]><LightBurnLibrary/>', "DOCTYPE"),
        ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x><r/>'.encode("utf-16"), "DOCTYPE"),
        (b"<LightBurnLibrary>" + b"<a>" * 50 + b"</a>" * 50 + b"</LightBurnLibrary>", "deeper"),
        (
            b"<LightBurnLibrary>" + b"<a/>" * (clb.MAX_ELEMENTS + 1) + b"</LightBurnLibrary>",
            "more than",
        ),
        (b" " * (clb.MAX_BYTES + 1), "larger"),
        (b"<LightBurnLibrary><Material>", "well-formed"),
        (b"<svg/>", "not a LightBurn library"),
        (b"", "well-formed"),
    ],
)
def test_hostile_or_foreign_files_are_refused_quickly(data: bytes, words: str) -> None:
    started = time.perf_counter()
    with pytest.raises(clb.ClbError, match=words):
        clb.import_library(data)
    if words in ("DOCTYPE", "deeper", "larger"):  # refused before or at the first elements
        assert time.perf_counter() - started < 1


def test_an_entry_that_does_not_map_is_skipped_alone() -> None:
    data = b"""<LightBurnLibrary><Material name="M">
      <Entry Thickness="abc" Desc="bad thickness"><CutSetting type="Cut"/></Entry>
      <Entry Thickness="3" Desc="no setting"/>
      <Entry Thickness="3" Desc="nan"><CutSetting type="Cut"><speed Value="nan"/>
        </CutSetting></Entry>
      <Entry Thickness="3" Desc="halftone"><CutSetting_Img type="Image">
        <ditherMode Value="halftone"/></CutSetting_Img></Entry>
      <Entry Thickness="3" Desc="passes"><CutSetting type="Cut"><numPasses Value="0"/>
        </CutSetting></Entry>
      <Entry Thickness="3" Desc="shrink"><CutSetting type="Cut"><kerf Value="-0.1"/>
        </CutSetting></Entry>
      <Entry Thickness="3" Desc="fine"><CutSetting type="Cut"/></Entry>
    </Material></LightBurnLibrary>"""
    out = clb.import_library(data)
    assert [m["description"] for m in out.items] == ["fine"]
    # LightBurn's defaults for absent fields: 100 mm/s, 20 %, one pass, air on
    assert out.items[0]["settings"]["cut"]["speed_mm_min"] == 6000
    assert out.items[0]["settings"]["cut"]["power_pct"] == 20
    reasons = {s["name"].split(" · ")[1]: s["reason"] for s in out.skipped}
    assert set(reasons) == {"bad thickness", "no setting", "nan", "halftone", "passes", "shrink"}
    assert "negative kerf" in reasons["shrink"]
    assert "halftone" in reasons["halftone"] and "passes" in reasons["passes"]
