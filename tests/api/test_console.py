"""The admin console through the real app against the simulated GRBL on a real pty: every
class of GRBL 1.1 ``$`` command (laserd.console_policy) meets its rule."""

from __future__ import annotations

from typing import Any

import pytest

from laserd.keys import LINK, SAFETY, SIMULATOR
from tests.api.machine_helpers import sim_client, sim_settings, wait_for

API = "/api/v1"


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path) -> Any:
    return await sim_client(aiohttp_client, sim_settings(tmp_path / "state"))


async def console(client: Any, admin: Any, line: str) -> Any:
    return await client.post(f"{API}/machine/console", json={"line": line}, headers=admin.headers)


async def until_restarted(client: Any, banners_before: int) -> None:
    """Wait for the banner of a reset the board did by itself, and for the link to see it."""
    sim, link = client.app[SIMULATOR], client.app[LINK]
    await wait_for(lambda: sim.record.banners > banners_before, 10)
    await link.wait_for_status(lambda s: True, 5)  # answered after the banner on the wire
    await wait_for(lambda: link.connected and link.state == "idle", 10)


async def stored_blocks(client: Any, admin: Any) -> list[str]:
    r = await console(client, admin, "$N")
    assert r.status == 200, await r.text()
    return [x for x in (await r.json())["lines"] if x.startswith("$N")]


@pytest.mark.parametrize(
    "line",
    [
        "$N0=M3S1000G1X5F100",  # the report's line: fire and move after every reset
        "$N1=G0X10",
        "$N0=S500",
        "$N0=G38.2Z-5F100",
        "$n0 = g21 m4 s1000",
        "$N0=X5",
        "$N1=G10L2P1X5",
    ],
)
async def test_startup_blocks_that_move_or_fire_are_refused_always(client, admin, line) -> None:
    """Interlocks all closed and the machine idle: still refused, and nothing is stored, so a
    reset (which runs the startup blocks) neither moves nor fires."""
    sim = client.app[SIMULATOR]
    r = await console(client, admin, line)
    assert r.status == 422, await r.text()
    err = (await r.json())["error"]
    assert err["code"] == "validation_error" and "startup block refused" in err["message"]
    assert err["details"] == [{"field": "line", "message": err["details"][0]["message"]}]
    assert await stored_blocks(client, admin) == ["$N0=", "$N1="]
    sim.clear_record()
    r = await client.post(f"{API}/machine/reset", headers=admin.headers)
    assert r.status == 200, await r.text()
    link = client.app[LINK]
    await wait_for(lambda: link.connected and link.state == "idle", 10)
    record = sim.record_snapshot()
    assert not any(on for _, on, _ in record.laser_log) and sim.position_mm == (0.0, 0.0, 0.0)


async def test_a_startup_block_of_modes_may_be_stored_and_cleared(client, admin) -> None:
    r = await console(client, admin, "$N0=G21 G90 G54")
    assert r.status == 200, await r.text()
    assert await stored_blocks(client, admin) == ["$N0=G21G90G54", "$N1="]
    r = await console(client, admin, "$N0=")  # clearing is allowed too
    assert r.status == 200, await r.text()
    assert await stored_blocks(client, admin) == ["$N0=", "$N1="]


async def test_only_reads_pass_while_an_interlock_is_open(client, admin) -> None:
    safety, sim = client.app[SAFETY], client.app[SIMULATOR]
    # The E-stop (its trip soft-resets an idle board, which stays Idle): GRBL itself answers
    # most reads with error:8 in the Door state a lid leaves it in.
    safety.drive("estop", False)
    await wait_for(lambda: not safety.all_safe(), 5)
    settings_before = sim.settings
    refused = [
        "$N0=G21",  # a harmless block is still an EEPROM write
        "$RST=$", "$RST=#", "$RST=*",
        "$SLP", "$C", "$X", "$H", "$J=G91X1F100",
        "$10=1", "$I=renamed", "$FOO",
        "G0 X1", "M3 S10",
    ]  # fmt: skip
    for line in refused:
        r = await console(client, admin, line)
        assert r.status == 409, (line, r.status, await r.text())
        assert (await r.json())["error"]["code"] == "interlock_open", line
    r = await client.put(f"{API}/machine/settings", json={"$10": 1}, headers=admin.headers)
    assert r.status == 409 and (await r.json())["error"]["code"] == "interlock_open"
    for line in ("$", "$$", "$#", "$G", "$I", "$N"):
        r = await console(client, admin, line)
        assert r.status == 200, (line, await r.text())
    assert sim.settings == settings_before
    assert await stored_blocks(client, admin) == ["$N0=", "$N1="]
    assert sim.state == "Idle" and sim.laser_on is False
    # closed again: the same commands are the admin's to use
    safety.drive("estop", True)
    await wait_for(safety.all_safe, 5)
    for line in ("$N0=G21", "$10=3", "$I=renamed", "$X"):
        r = await console(client, admin, line)
        assert r.status == 200, (line, await r.text())
    # $RST= and leaving check mode ($C twice) soft-reset the board after their ok.
    for lines in (["$RST=#"], ["$C", "$C"]):
        banners = sim.record.banners
        for line in lines:
            r = await console(client, admin, line)
            assert r.status == 200, (line, await r.text())
        await until_restarted(client, banners)
    r = await client.put(f"{API}/machine/settings", json={"$10": 3}, headers=admin.headers)
    assert r.status == 200, await r.text()
