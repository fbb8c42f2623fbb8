"""The simulated GRBL's fault injection and the faults it records, through the real pty."""

from __future__ import annotations

import os
import time
from collections import deque
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from laserd.grbl.sim import SimulatedGrbl
    from tests.streaming.conftest import PtyClient

BANNER = "Grbl 1.1h ['$' for help]"
UNLOCK = "[MSG:'$H'|'$X' to unlock]"


def test_rx_overflow_is_recorded(port: PtyClient, sim: SimulatedGrbl) -> None:
    port.send("G4 P1000\n")  # a dwell blocks the protocol (10 s at x100)...
    time.sleep(0.05)
    port.send("G0 X1\n" * 40)  # ...while 240 bytes arrive without waiting for an ok
    deadline = time.monotonic() + 5
    while sim.record.rx_overflows == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim.record.rx_overflows > 0
    assert "rx overflow" in sim.record.faults[0]
    assert port.fields(port.status())["Bf"].endswith(",0")
    port.send(b"\x18")  # the dwell is not motion: no alarm, buffers flushed
    assert port.expect(BANNER)
    assert port.state() == "Idle"


def test_counting_sender_never_overflows_under_back_pressure(
    make_sim: Callable[..., SimulatedGrbl], make_client: Callable[..., PtyClient]
) -> None:
    sim = make_sim(time_scale=1.0)  # motion slower than the link: the planner fills up
    port = make_client(sim)
    lines = ["G1 F3000"] + [f"G1X{(i % 100) / 10:.1f}S{i % 1000}" for i in range(1, 400)]
    in_flight: deque[int] = deque()
    used = 0
    sent = 0
    acked = 0
    while acked < len(lines):
        while sent < len(lines) and used + len(lines[sent]) + 1 <= 128:
            port.send(lines[sent] + "\n")
            in_flight.append(len(lines[sent]) + 1)
            used += in_flight[-1]
            sent += 1
        reply = port.expect(port.is_response)[-1]
        assert reply == "ok", f"line {acked + 1}: {reply}"
        used -= in_flight.popleft()
        acked += 1
    assert sim.record.rx_overflows == 0
    assert sim.record.lines_executed == len(lines)
    assert port.position(port.wait_state("Idle")) == (9.9, 0.0, 0.0)


def test_unplug_and_replug(
    port: PtyClient, sim: SimulatedGrbl, make_client: Callable[..., PtyClient]
) -> None:
    assert port.command("G0 X5") == ["ok"]
    port.wait_state("Idle")
    sim.unplug()
    with pytest.raises((OSError, EOFError)):
        port.read_line(2.0)  # the far end vanished: EIO / EOF, like a pulled USB cable
    assert not os.path.lexists(sim.link_path)
    assert sim.replug() == sim.link_path
    assert os.readlink(sim.link_path).startswith("/dev/pts/")
    fresh = make_client(sim)  # reads the banner of the freshly booted board
    report = fresh.status()
    assert fresh.fields(report)["state"] == "Idle"
    assert fresh.position(report) == (0.0, 0.0, 0.0)  # position is lost with power


def test_error_on_line(port: PtyClient, sim: SimulatedGrbl) -> None:
    sim.error_on_line(2, 20)
    assert port.command("G21") == ["ok"]
    assert port.command("G0 X1") == ["error:20"]  # answered with the error, not executed
    assert port.command("G90") == ["ok"]
    assert sim.position_mm == (0.0, 0.0, 0.0)
    assert sim.record.errors == [(2, 20)]


def test_slow_acks(port: PtyClient, sim: SimulatedGrbl) -> None:
    sim.slow_acks(0.25)
    started = time.monotonic()
    assert port.command("G21") == ["ok"]
    assert time.monotonic() - started >= 0.24
    sim.slow_acks(0)
    started = time.monotonic()
    assert port.command("G21") == ["ok"]
    assert time.monotonic() - started < 0.2


def test_hard_limit_alarm_needs_reset_then_unlock(port: PtyClient, sim: SimulatedGrbl) -> None:
    assert port.command("G1 X300 F600") == ["ok"]
    port.wait_state("Run")
    sim.raise_alarm(1)
    assert port.expect("[MSG:Reset to continue]")[-2] == "ALARM:1"
    assert port.state() == "Alarm"
    stopped_at = sim.position_mm
    port.send("$X\n")
    assert port.read_line(0.2) is None  # locked until reset
    assert sim.position_mm == stopped_at
    port.send(b"\x18")
    assert port.expect(UNLOCK)[-2] == BANNER
    assert port.command("$X") == ["[MSG:Caution: Unlocked]", "ok"]
    assert port.state() == "Idle"


def test_other_alarm_locks_gcode_until_unlock(port: PtyClient, sim: SimulatedGrbl) -> None:
    sim.raise_alarm(9)
    assert port.expect("ALARM:9")
    assert port.command("G0 X1") == ["error:9"]
    assert port.command("$X") == ["[MSG:Caution: Unlocked]", "ok"]
    assert port.command("G0 X1") == ["ok"]


def test_controller_reboots_by_itself(port: PtyClient, sim: SimulatedGrbl) -> None:
    assert port.command("G0 X5") == ["ok"]
    port.wait_state("Idle")
    banners = sim.record.banners
    sim.reset_controller()
    assert port.expect(BANNER)
    assert port.position(port.status()) == (0.0, 0.0, 0.0)
    assert sim.record.banners == banners + 1


def test_without_dtr_reset_the_board_carries_on(
    make_sim: Callable[..., SimulatedGrbl], make_client: Callable[..., PtyClient]
) -> None:
    sim = make_sim(reset_on_open=False)
    time.sleep(0.1)  # the power-up banner is sent before anyone opens the port
    first = make_client(sim, read_banner=False)
    assert first.read_line(0.2) is None  # its power-up banner went to nobody
    assert first.command("G0 X5") == ["ok"]
    first.wait_state("Idle")
    first.close()
    time.sleep(0.1)  # a close and reopen within the same instant is not seen (see runner)
    second = make_client(sim, read_banner=False)
    assert second.read_line(0.2) is None  # no reset on open: no banner, position kept
    assert second.position(second.status()) == (5.0, 0.0, 0.0)
    second.send(b"\x18")
    assert second.expect(BANNER)


def test_dtr_reset_on_every_open(
    make_sim: Callable[..., SimulatedGrbl], make_client: Callable[..., PtyClient]
) -> None:
    sim = make_sim(reset_on_open=True, boot_delay_s=0.05)
    first = make_client(sim)
    assert first.command("G0 X5") == ["ok"]
    first.wait_state("Idle")
    first.close()
    time.sleep(0.1)
    second = make_client(sim)  # reads the banner of the rebooted board
    assert second.position(second.status()) == (0.0, 0.0, 0.0)


def test_realtime_log_and_byte_counts(port: PtyClient, sim: SimulatedGrbl) -> None:
    port.send(b"?\x91!~\x90")
    deadline = time.monotonic() + 2
    while len(sim.record.realtime_log) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    log = list(sim.record_snapshot().realtime_log)
    assert [b for _, b in log] == [0x3F, 0x91, 0x21, 0x7E, 0x90]
    assert [t for t, _ in log] == sorted(t for t, _ in log)
    assert sim.record.bytes_in == 5
    assert sim.record.lines_received == 0  # real-time bytes never make a line


def test_sleep_and_restore_defaults(port: PtyClient) -> None:
    assert port.command("$110=100") == ["ok"]
    assert port.command("$RST=$") == ["[MSG:Restoring defaults]", "ok"]
    port.expect(BANNER)
    assert "$110=6000.000" in port.command("$$")
    assert port.command("$SLP") == ["ok"]
    assert port.expect("[MSG:Sleeping]")
    assert port.state() == "Sleep"
    port.send(b"\x18")
    assert port.expect(UNLOCK)
    assert port.state() == "Alarm"
