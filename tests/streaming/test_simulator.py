"""The simulated GRBL's wire protocol, checked through its real pty.

Motion, faults and laser behaviour are in test_sim_motion.py and test_sim_faults.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import PtyClient

    from laserd.grbl.sim import SimulatedGrbl

BANNER = "Grbl 1.1h ['$' for help]"


def test_banner_then_idle_status(port: PtyClient) -> None:
    fields = port.fields(port.status())
    assert fields["state"] == "Idle"
    assert fields["MPos"] == "0.000,0.000,0.000"
    assert fields["Bf"] == "15,128"
    assert fields["FS"] == "0,0"


def test_settings_list_is_realistic(port: PtyClient) -> None:
    lines = port.command("$$")
    assert lines[-1] == "ok"
    settings = dict(line[1:].split("=") for line in lines[:-1])
    for key, value in {"10": "3", "30": "1000", "31": "0", "32": "1", "22": "0"}.items():
        assert settings[key] == value
    for key in ("110", "111", "112", "120", "121", "122", "130", "131", "132"):
        assert float(settings[key]) > 0
    assert settings["130"] == "400.000"


def test_build_info_and_parser_state(port: PtyClient) -> None:
    assert port.command("$I") == ["[VER:1.1h.20190825:]", "[OPT:V,15,128]", "ok"]
    assert port.command("$G") == ["[GC:G0 G54 G17 G21 G90 G94 M5 M9 T0 F0 S0]", "ok"]
    assert port.command("G91 G1 F1200 M3 S300") == ["ok"]
    assert port.command("$G") == ["[GC:G1 G54 G17 G21 G91 G94 M3 M9 T0 F1200 S300]", "ok"]
    assert port.command("$I=my laser") == ["ok"]
    assert port.command("$I")[0] == "[VER:1.1h.20190825:MYLASER]"  # upper-cased, no spaces


def test_setting_write_and_validation(port: PtyClient) -> None:
    assert port.command("$110=3000") == ["ok"]
    assert "$110=3000.000" in port.command("$$")
    assert port.command("$32=0") == ["ok"]
    assert port.command("$999=1") == ["error:3"]
    assert port.command("$110=-5") == ["error:4"]
    assert port.command("$20=1") == ["error:10"]  # soft limits need homing
    assert port.command("$110=abc") == ["error:2"]


def test_every_line_gets_ok_in_order(port: PtyClient, sim: SimulatedGrbl) -> None:
    lines = ["G21", "G90", "G1 X1 F3000", "G1 Y1", "(comment only)", "", "G0 X0 Y0"]
    for line in lines:
        assert port.command(line) == ["ok"]
    assert sim.record.lines_received == len(lines)
    assert sim.record.lines_executed == len(lines)
    assert list(sim.record.last_lines)[-3:] == ["", "", "G0X0Y0"]


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("G1 X10", 22),  # no feed rate yet
        ("G5 X1", 20),  # unsupported G-code
        ("A1", 20),  # unsupported word
        ("M7", 20),  # mist coolant not compiled in
        ("1G0", 1),  # no command letter
        ("G1 X F100", 2),  # bad number
        ("G0 G1 X1", 21),  # same modal group twice
        ("G1 X1 X2 F100", 25),  # repeated word
        ("G0 X1 I5", 36),  # unused word
        ("G2 X10 Y10 F100", 35),  # arc without offsets
        ("G2 X10 R0.1 F100", 33),  # radius too small to reach the target
        ("G4", 28),  # dwell without P
        ("S-1", 4),  # negative spindle speed
        ("G1.5 X1", 23),  # non-integer motion code
        ("G80 X1", 31),  # axis words with motion cancelled
        ("G10 L2 P9 X1", 29),  # no such coordinate system
        ("$J=G1X10F100", 16),  # jog with a motion command
        ("$J=G91X10", 22),  # jog without a feed rate
        ("$H", 5),  # homing disabled ($22=0)
        ("$Q", 3),  # unknown $ command
        ("G1X1F100" + "0" * 80, 11),  # longer than the 80-character line buffer
    ],
)
def test_error_codes(port: PtyClient, line: str, code: int) -> None:
    assert port.command(line) == [f"error:{code}"]
    assert port.command("G4P0") == ["ok"]  # the controller carries on after the error


def test_crlf_costs_an_extra_ok_like_real_grbl(port: PtyClient) -> None:
    port.send("G21\r\n")
    assert port.read_line() == "ok"
    assert port.read_line() == "ok"
    assert port.read_line(0.2) is None


def test_status_inside_comment_is_answered_and_removed(port: PtyClient, sim: SimulatedGrbl) -> None:
    port.send("G1 X5 F3000 (a comment? with a question)\n")
    lines = port.expect("ok")
    assert any(line.startswith("<") for line in lines)
    assert sim.record.last_lines[-1] == "G1X5F3000"
    report = port.wait_state("Idle")
    assert port.position(report) == (5.0, 0.0, 0.0)
    assert [b for _, b in sim.record.realtime_log].count(ord("?")) >= 2


def test_realtime_bytes_mid_line_do_not_corrupt_it(port: PtyClient, sim: SimulatedGrbl) -> None:
    port.send(b"G1 X1\x90\x91 Y2 F3\x85000\n")  # override and jog-cancel bytes inside a line
    assert port.expect("ok")[-1] == "ok"
    assert sim.record.last_lines[-1] == "G1X1Y2F3000"
    assert port.fields(port.status())["state"] in ("Run", "Idle")


def test_overrides_change_ov_field(port: PtyClient, sim: SimulatedGrbl) -> None:
    port.status()  # the first report after a reset carries WCO: and defers Ov: by one
    port.send(bytes([0x91, 0x91, 0x93, 0x96, 0x9B]))
    report = port.status()
    assert port.fields(report)["Ov"] == "121,50,90"
    assert sim.overrides == (121, 50, 90)
    port.send(bytes([0x90, 0x95, 0x99]))
    assert port.fields(port.status())["Ov"] == "100,100,100"
    port.send(bytes([0x92] * 30))  # clamps at 10 %
    assert port.fields(port.status())["Ov"].startswith("10,")


def test_an_override_reset_that_changes_nothing_is_not_reported_at_once(
    port: PtyClient, sim: SimulatedGrbl
) -> None:
    """GRBL 1.1 puts Ov: in the next report only when a value changed; a reset of overrides
    already at 100 % waits for the regular rotation (what laserd's confirmation polls for)."""
    for _ in range(12):
        port.status()  # past the reports right after the banner, whatever they carry
    reports = [port.fields(port.status()) for _ in range(10)]
    assert sum("Ov" in r for r in reports) == 1  # every 10th report when idle
    while "Ov" not in port.fields(port.status()):
        pass
    port.send(bytes([0x90, 0x95, 0x99]))  # nothing changes
    assert "Ov" not in port.fields(port.status())
    port.send(bytes([0x9A]))  # power +10 %: the next report says so
    assert port.fields(port.status())["Ov"] == "100,100,110"
    sim.ignore_realtime(0x99)
    port.send(bytes([0x99]))  # lost on this board
    for _ in range(10):
        if "Ov" in (fields := port.fields(port.status())):
            break
    assert fields["Ov"] == "100,100,110" and sim.overrides == (100, 100, 110)


def test_wco_and_ov_rotate_through_reports(port: PtyClient) -> None:
    reports = [port.fields(port.status()) for _ in range(22)]
    with_wco = [i for i, r in enumerate(reports) if "WCO" in r]
    with_ov = [i for i, r in enumerate(reports) if "Ov" in r]
    assert with_wco[:3] == [0, 10, 20]
    assert with_ov[:2] == [1, 11]
    assert all("Bf" in r for r in reports)


def test_work_position_with_offsets(port: PtyClient) -> None:
    assert port.command("$10=0") == ["ok"]
    assert port.command("G10 L2 P1 X10 Y20") == ["ok"]
    assert port.command("G0 X5 Y5") == ["ok"]
    report = port.wait_state("Idle")
    fields = port.fields(report)
    assert fields["WPos"] == "5.000,5.000,0.000"
    assert "Bf" not in fields
    assert port.command("$#")[0] == "[G54:10.000,20.000,0.000]"


def test_check_mode_parses_without_moving(port: PtyClient, sim: SimulatedGrbl) -> None:
    assert port.command("$C") == ["[MSG:Enabled]", "ok"]
    assert port.fields(port.status())["state"] == "Check"
    assert port.command("G1 X50 F1000") == ["ok"]
    assert port.command("G1 X50") == ["ok"]
    assert port.command("G2 X1 F100") == ["error:35"]
    assert sim.position_mm == (0.0, 0.0, 0.0)
    assert port.command("$C") == ["[MSG:Disabled]", "ok"]
    port.expect(BANNER)
    assert port.fields(port.status())["state"] == "Idle"


def test_startup_lines(port: PtyClient) -> None:
    assert port.command("$N0=G20G91") == ["ok"]
    assert port.command("$N") == ["$N0=G20G91", "$N1=", "ok"]
    port.send(b"\x18")
    lines = port.expect(">G20G91:ok")
    assert BANNER in lines
    assert "G20 G91" in port.command("$G")[0]


def test_help(port: PtyClient) -> None:
    assert port.command("$")[0].startswith("[HLP:$$ $# $G $I $N")


def test_run_simulator_cli(tmp_path: Path, make_client: Callable[..., PtyClient]) -> None:
    config = tmp_path / "laserd.toml"
    config.write_text(
        f'[storage]\nstate_dir = "{tmp_path / "state"}"\n[simulator]\ntime_scale = 50\n'
    )
    code = (
        "import sys; from laserd.settings import load_settings;"
        "from laserd.grbl.sim import run_simulator_cli;"
        f"sys.exit(run_simulator_cli(load_settings({str(config)!r}, env={{}})))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=tmp_path, env=env
    )
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        assert path == str(tmp_path / "state" / "sim" / "ttyGRBL")
        assert os.readlink(path).startswith("/dev/pts/")
        client = make_client(path, read_banner=False)  # no DTR reset: no banner on open
        client.send(b"\x18")
        client.expect(BANNER)
        assert client.command("$I")[-1] == "ok"
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        deadline = time.monotonic() + 2
        while os.path.lexists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.lexists(path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
