"""Parsing of real GRBL 1.1 lines (as printed in gnea/grbl's interface documentation), status
tracking and the send-side line normaliser."""

from __future__ import annotations

import pytest

from laserd.grbl.codes import (
    ALARM_CODES,
    ERROR_CODES,
    SETTING_CODES,
    alarm_meaning,
    error_meaning,
    setting_info,
)
from laserd.grbl.errors import GrblError, LineRefused
from laserd.grbl.protocol import (
    MAX_LINE_CHARS,
    RT,
    AlarmMsg,
    Banner,
    BuildOptions,
    ErrorReply,
    Feedback,
    MachineState,
    Ok,
    Overrides,
    Parameter,
    Position,
    SettingLine,
    StartupLineResult,
    StatusReport,
    Unknown,
    VersionInfo,
    normalise_line,
    parse_line,
)
from laserd.grbl.status import StatusTracker


def test_ok_error_alarm():
    assert isinstance(parse_line("ok"), Ok)
    err = parse_line("error:22")
    assert err == ErrorReply(22, error_meaning(22))
    assert "feed rate" in err.meaning.lower()
    alarm = parse_line("ALARM:3")
    assert isinstance(alarm, AlarmMsg) and alarm.code == 3
    assert "position" in alarm.meaning.lower()


def test_unknown_codes_still_have_a_meaning():
    assert "99" in error_meaning(99)
    assert "42" in alarm_meaning(42)
    assert parse_line("error:99") == ErrorReply(99, error_meaning(99))


def test_code_tables_cover_grbl_1_1():
    assert set(range(1, 18)) <= set(ERROR_CODES)
    assert set(range(20, 39)) <= set(ERROR_CODES)
    assert set(ALARM_CODES) == set(range(1, 10))
    assert setting_info(32).name == "Laser mode enable"
    assert setting_info(30).unit == "RPM"
    assert {0, 1, 10, 13, 22, 100, 110, 120, 130} <= set(SETTING_CODES)
    assert setting_info(999) is None


@pytest.mark.parametrize(
    ("line", "version"),
    [("Grbl 1.1h ['$' for help]", "1.1h"), ("Grbl 1.1f ['$' for help]", "1.1f"),
     ("GrblHAL 1.1f ['$' or '$HELP' for help]", "1.1f")],
)
def test_banner(line, version):
    msg = parse_line(line)
    assert isinstance(msg, Banner) and msg.version == version


def test_status_idle_minimal():
    msg = parse_line("<Idle|MPos:0.000,0.000,0.000|FS:0,0>")
    assert isinstance(msg, StatusReport)
    assert msg.state is MachineState.IDLE and msg.substate is None
    assert msg.mpos == Position(0, 0, 0) and msg.wpos is None
    assert msg.feed == 0 and msg.spindle == 0
    assert msg.overrides is None and msg.wco is None and msg.pins == ""


def test_status_every_field():
    line = ("<Run|MPos:-10.250,5.500,0.000|Bf:12,96|Ln:99999|FS:1500,800|"
            "WCO:0.000,1.551,5.664|Ov:110,50,80|A:SFM|Pn:XZP>")
    msg = parse_line(line)
    assert isinstance(msg, StatusReport)
    assert msg.state is MachineState.RUN
    assert msg.mpos == Position(-10.25, 5.5, 0.0)
    assert (msg.planner_free, msg.rx_free) == (12, 96)
    assert msg.line_number == 99999
    assert (msg.feed, msg.spindle) == (1500, 800)
    assert msg.wco == Position(0.0, 1.551, 5.664)
    assert msg.overrides == Overrides(110, 50, 80)
    assert msg.accessories == "SFM"
    assert msg.pins == "XZP"
    assert msg.raw == line


@pytest.mark.parametrize(
    ("line", "state", "sub"),
    [("<Hold:0|MPos:1,2,3|FS:0,0>", MachineState.HOLD, 0),
     ("<Hold:1|MPos:1,2,3|FS:0,0>", MachineState.HOLD, 1),
     ("<Door:1|MPos:1,2,3|FS:0,0>", MachineState.DOOR, 1),
     ("<Door:3|MPos:1,2,3|FS:0,0>", MachineState.DOOR, 3),
     ("<Alarm|MPos:1,2,3|FS:0,0>", MachineState.ALARM, None),
     ("<Jog|MPos:1,2,3|FS:0,0>", MachineState.JOG, None),
     ("<Check|MPos:1,2,3|FS:0,0>", MachineState.CHECK, None),
     ("<Home|MPos:1,2,3|FS:0,0>", MachineState.HOME, None),
     ("<Sleep|MPos:1,2,3|FS:0,0>", MachineState.SLEEP, None)],
)
def test_status_states_and_substates(line, state, sub):
    msg = parse_line(line)
    assert isinstance(msg, StatusReport)
    assert (msg.state, msg.substate) == (state, sub)


def test_status_work_position_and_feed_only():
    msg = parse_line("<Idle|WPos:-2.500,0.000,11.000|F:500>")
    assert isinstance(msg, StatusReport)
    assert msg.wpos == Position(-2.5, 0.0, 11.0) and msg.mpos is None
    assert msg.feed == 500 and msg.spindle is None


def test_malformed_status_is_unknown_not_an_exception():
    for line in ("<Bogus|MPos:0,0,0>", "<Idle|FS:0,0>", "<Idle|MPos:a,b,c>", "<"):
        assert isinstance(parse_line(line), Unknown), line


def test_feedback_messages():
    assert parse_line("[MSG:Reset to continue]") == Feedback("MSG", "Reset to continue")
    assert parse_line("[MSG:'$H'|'$X' to unlock]") == Feedback("MSG", "'$H'|'$X' to unlock")
    gc = parse_line("[GC:G0 G54 G17 G21 G90 G94 M0 M5 M9 T0 F0. S0.]")
    assert gc == Feedback("GC", "G0 G54 G17 G21 G90 G94 M0 M5 M9 T0 F0. S0.")
    hlp = parse_line("[HLP:$$ $# $G $I $N $x=val $Nx=line $J=line $SLP $C $X $H ~ ! ? ctrl-x]")
    assert isinstance(hlp, Feedback) and hlp.kind == "HLP"
    assert parse_line("[echo:G1X0.540Y10.4F100]") == Feedback("echo", "G1X0.540Y10.4F100")


def test_build_info():
    assert parse_line("[VER:1.1h.20190825:]") == VersionInfo("1.1h.20190825", "")
    assert parse_line("[VER:v1.1d.20161014:Some string]") == VersionInfo(
        "v1.1d.20161014", "Some string")
    assert parse_line("[OPT:VL,15,128]") == BuildOptions("VL", 15, 128)
    assert parse_line("[OPT:VL]") == BuildOptions("VL", None, None)
    assert parse_line("[OPT:V,15,255]").rx_buffer_bytes == 255


def test_parameters():
    assert parse_line("[G54:0.000,0.000,0.000]") == Parameter("G54", (0.0, 0.0, 0.0))
    assert parse_line("[G92:1.000,-2.000,0.500]") == Parameter("G92", (1.0, -2.0, 0.5))
    assert parse_line("[TLO:0.000]") == Parameter("TLO", (0.0,))
    assert parse_line("[PRB:0.000,0.000,1.492:1]") == Parameter("PRB", (0.0, 0.0, 1.492), True)
    assert parse_line("[PRB:0.000,0.000,0.000:0]").success is False


def test_settings_and_startup_lines():
    assert parse_line("$110=500.000") == SettingLine("110", "500.000")
    assert parse_line("$32=1") == SettingLine("32", "1")
    assert parse_line("$N0=G54") == SettingLine("N0", "G54")
    assert parse_line("$N1=") == SettingLine("N1", "")
    ok = parse_line(">G54G20:ok")
    assert ok == StartupLineResult("G54G20", None) and ok.ok
    bad = parse_line(">G54G20:error:20")
    assert bad == StartupLineResult("G54G20", 20) and not bad.ok
    assert parse_line(">:error:7") == StartupLineResult("", 7)


def test_noise_is_unknown():
    for line in ("garbage", "error:x", "ALARM:", "$", "[NOCOLON]", ">G54"):
        assert isinstance(parse_line(line), Unknown), line


def test_tracker_keeps_wco_and_overrides_between_reports():
    tr = StatusTracker()
    first = tr.update(parse_line(
        "<Idle|MPos:10.000,20.000,0.000|FS:0,0|WCO:5.000,5.000,0.000>"))
    assert first.wpos == Position(5, 15, 0)
    assert first.overrides == Overrides()
    second = tr.update(parse_line("<Run|MPos:12.000,20.000,0.000|FS:900,300|Ov:120,100,90|A:S>"))
    assert second.wpos == Position(7, 15, 0)  # WCO remembered
    assert second.overrides == Overrides(120, 100, 90) and second.accessories == "S"
    third = tr.update(parse_line("<Run|MPos:13.000,20.000,0.000|FS:900,300>"))
    assert third.overrides == Overrides(120, 100, 90) and third.accessories == "S"
    fourth = tr.update(parse_line("<Idle|MPos:13.000,20.000,0.000|FS:0,0|Ov:120,100,90>"))
    assert fourth.accessories == ""  # Ov without A: accessories are off
    assert fourth.as_dict()["overrides"] == {"feed": 120, "rapid": 100, "power": 90}


def test_tracker_computes_mpos_from_wpos():
    tr = StatusTracker()
    tr.update(parse_line("<Idle|WPos:0.000,0.000,0.000|FS:0,0|WCO:1.000,2.000,3.000>"))
    st = tr.update(parse_line("<Idle|WPos:1.000,1.000,1.000|FS:0,0>"))
    assert st.mpos == Position(2, 3, 4)


def test_realtime_bytes():
    assert ord("?") == RT.STATUS and ord("!") == RT.HOLD and ord("~") == RT.RESUME
    assert RT.RESET == 0x18 and RT.SAFETY_DOOR == 0x84 and RT.JOG_CANCEL == 0x85
    overrides = [RT.FEED_100, RT.FEED_PLUS_10, RT.FEED_MINUS_10, RT.FEED_PLUS_1, RT.FEED_MINUS_1,
                 RT.RAPID_100, RT.RAPID_50, RT.RAPID_25, RT.POWER_100, RT.POWER_PLUS_10,
                 RT.POWER_MINUS_10, RT.POWER_PLUS_1, RT.POWER_MINUS_1]
    assert [int(b) for b in overrides] == [*range(0x90, 0x98), *range(0x99, 0x9E)]


@pytest.mark.parametrize(
    ("raw", "sent"),
    [("G1 X10 Y20 F1000", "G1X10Y20F1000"),
     ("g0 x1.5 y-2", "G0X1.5Y-2"),
     ("G1 X1 ; move! now? ~", "G1X1"),
     ("G1 (cut ! here ?) X1 (and ~) Y2", "G1X1Y2"),
     ("(whole line comment with ~ and !)", ""),
     ("; only a comment ?", ""),
     ("G1 X1 (unclosed comment ! to the end", "G1X1"),
     ("G1 X1 (a;b) Y2", "G1X1Y2"),
     ("G1X1\r\n", "G1X1"),
     ("M3 S1000 (Überschrift °C)", "M3S1000"),
     ("$J=G91 X10 F1000", "$J=G91X10F1000"),
     ("", ""),
     ("\t  ", "")],
)
def test_normalise(raw, sent):
    assert normalise_line(raw) == sent


@pytest.mark.parametrize(
    "raw", ["G1 X1 !", "G1 X1?", "~", "G1 X1 \x18", "G1 X°1", "G1 X1 \x84", "G1\x07X1"]
)
def test_normalise_refuses_unsafe_lines(raw):
    with pytest.raises(LineRefused):
        normalise_line(raw, lineno=7)


def test_normalise_length_limit():
    ok = "G1X" + "1" * (MAX_LINE_CHARS - 3)
    assert normalise_line(ok) == ok
    with pytest.raises(LineRefused) as info:
        normalise_line(ok + "1", lineno=12)
    assert info.value.lineno == 12
    # Comments and spaces do not count: only what is sent does.
    assert normalise_line(ok + " (" + "x" * 200 + ")") == ok


def test_grbl_error_carries_line_and_meaning():
    exc = GrblError(33, error_meaning(33), "G2X1", 41)
    assert exc.status == 409 and exc.code == "grbl_error"
    assert exc.details == {"grbl_code": 33, "meaning": error_meaning(33), "line": "G2X1",
                           "lineno": 41}
    assert "line 41" in exc.message
