"""Laser enable (level), start button, air assist and exhaust."""

from __future__ import annotations

import asyncio

import pytest

from laserd.errors import InterlockOpen, Unavailable
from tests.safety.rig import LASER_PIN, LID, Rig, in_thread, until

START_PIN = 22
AIR_PIN = 23
EXHAUST_PIN = 24


async def test_laser_enable_is_off_from_construction(rig: Rig) -> None:
    sup = rig.build(interlocks=[LID], laser_enable={"pin": LASER_PIN})
    laser = rig.pin(LASER_PIN)
    assert laser.function == "output" and laser.state is False
    assert not sup.armed
    sup.drive_all_safe()
    await sup.start()
    assert laser.state is False  # starting does not arm


async def test_active_low_output(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID], laser_enable={"pin": LASER_PIN, "active_high": False})
    laser = rig.pin(LASER_PIN)
    assert laser.state is True  # high = off for an active-low relay driver
    sup.arm()
    assert laser.state is False
    in_thread(lambda: sup.drive("lid", False))
    assert laser.state is True


async def test_arm_and_disarm_in_level_mode(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID], laser_enable={"pin": LASER_PIN})
    laser = rig.pin(LASER_PIN)
    sup.arm()
    assert sup.armed and laser.state is True
    sup.disarm()
    assert not sup.armed and laser.state is False


async def test_close_switches_everything_off(rig: Rig) -> None:
    sup = await rig.started(
        interlocks=[LID],
        laser_enable={"pin": LASER_PIN},
        air_assist={"pin": AIR_PIN},
        exhaust={"pin": EXHAUST_PIN, "run_on_s": 60},
        start_button={"pin": START_PIN},
    )
    sup.arm()
    sup.job_started()
    sup.set_air(True)
    waiter = asyncio.create_task(sup.wait_for_start(30))
    await asyncio.sleep(0)
    sup.job_finished()  # exhaust would run on for a minute...
    await sup.close()  # ...but closing stops it now
    for pin in (LASER_PIN, AIR_PIN, EXHAUST_PIN):
        assert rig.pin(pin).state is False
    assert await asyncio.wait_for(waiter, 5) is False
    assert not sup.all_safe()
    with pytest.raises(Unavailable):
        sup.arm()


async def test_air_and_exhaust_follow_the_job_with_run_on(rig: Rig) -> None:
    sup = await rig.started(
        interlocks=[LID], air_assist={"pin": AIR_PIN}, exhaust={"pin": EXHAUST_PIN, "run_on_s": 0.3}
    )
    air, exhaust = rig.pin(AIR_PIN), rig.pin(EXHAUST_PIN)
    assert air.state is False and exhaust.state is False
    sup.job_started()
    assert exhaust.state is True and air.state is False
    sup.set_air(True)  # M8 in the job
    assert air.state is True
    sup.set_air(False)  # M9
    assert air.state is False
    sup.set_air(True)
    sup.job_finished()
    assert air.state is False and exhaust.state is True  # smoke still in the box
    await until(lambda: exhaust.state is False)

    # A job starting during the run-on keeps the exhaust on.
    sup.job_finished()
    sup.job_started()
    await asyncio.sleep(0.45)
    assert exhaust.state is True
    sup.job_finished()
    await until(lambda: exhaust.state is False)


async def test_exhaust_without_run_on_stops_at_once(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID], exhaust={"pin": EXHAUST_PIN})
    sup.job_started()
    sup.job_finished()
    assert rig.pin(EXHAUST_PIN).state is False


# ---------------------------------------------------------------- start button


async def _button_rig(rig: Rig, bounce_ms: int = 30):
    return await rig.started(
        interlocks=[LID], start_button={"pin": START_PIN, "bounce_ms": bounce_ms, "timeout_s": 30}
    )


async def test_start_button_times_out(rig: Rig) -> None:
    sup = await _button_rig(rig)
    assert await sup.wait_for_start(0.1) is False


async def test_start_button_press_starts(rig: Rig) -> None:
    sup = await _button_rig(rig)
    waiter = asyncio.create_task(sup.wait_for_start(10))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    in_thread(lambda: sup.drive("start", False))  # pressed
    assert await asyncio.wait_for(waiter, 5) is True
    sup.drive("start", True)  # released
    await until(lambda: sup.snapshot()[-1]["safe"] is True)


async def test_a_press_shorter_than_the_bounce_time_does_not_count(rig: Rig) -> None:
    sup = await _button_rig(rig, bounce_ms=200)
    waiter = asyncio.create_task(sup.wait_for_start(0.6))
    await asyncio.sleep(0.02)
    sup.drive("start", False)
    sup.drive("start", True)  # a spike, not a press
    assert await waiter is False


async def test_a_press_before_waiting_does_not_count(rig: Rig) -> None:
    sup = await _button_rig(rig)
    sup.drive("start", False)  # held down before the job asked
    await asyncio.sleep(0.1)
    assert await sup.wait_for_start(0.3) is False
    # Release and press again: that one counts.
    waiter = asyncio.create_task(sup.wait_for_start(10))
    await asyncio.sleep(0.05)
    sup.drive("start", True)
    await asyncio.sleep(0.05)
    sup.drive("start", False)
    assert await asyncio.wait_for(waiter, 5) is True


async def test_start_button_refused_while_an_interlock_is_open(rig: Rig) -> None:
    sup = await _button_rig(rig)
    in_thread(lambda: sup.drive("lid", False))
    waiter = asyncio.create_task(sup.wait_for_start(0.5))
    await asyncio.sleep(0.05)
    sup.drive("start", False)
    assert await waiter is False
    with pytest.raises(InterlockOpen):
        sup.check_can_start()


async def test_without_a_start_button_nothing_waits(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID])
    assert not sup.has_start_button
    assert await sup.wait_for_start(0.01) is True
