"""Properties of the simulated controller core, on a hand-driven clock (no pty, no thread).

1. Whatever bytes arrive, the core never raises and its receive buffer never exceeds 128.
2. Sent one at a time, every line gets exactly one answer (``ok`` or ``error:N``) — the
   invariant character counting rests on.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from laserd.grbl.sim.core import GrblCore
from laserd.grbl.sim.record import SimRecord

CLEAN_WORDS = [
    "G0", "G1", "G2", "G3", "G4P0.01", "G10L2P1", "G10L20P0", "G17", "G18", "G19", "G20", "G21",
    "G28", "G28.1", "G30", "G38.2", "G43.1", "G49", "G53", "G54", "G59", "G80", "G90", "G91",
    "G92", "G92.1", "G93", "G94", "M2", "M3", "M4", "M5", "M7", "M8", "M9", "T1", "N12",
    "R5", "R-3", "I4", "J-2", "K1", "X3", "Y-2", "Z1", "X0.5", "F600", "F0", "S300", "S0",
    "$$", "$#", "$G", "$I", "$N", "$X", "$H", "$J=G91X1F500", "$J=X2", "$110=3000", "$32=0",
    "$10=0", "(note)", ";end", " ", "1", ".", "X", "A1",
]  # fmt: skip
ANY_WORDS = [*CLEAN_WORDS, "$C", "$SLP", "$RST=*", "$22=1", "$20=1", "M0", "G4P5"]
REALTIME = [b"?", b"!", b"~", b"\x18", b"\x84", b"\x85", b"\x91", b"\x9b", b"\x9e", b"\xa0"]

line_text = st.lists(st.sampled_from(CLEAN_WORDS), min_size=1, max_size=5).map("".join)
any_chunk = st.one_of(
    st.lists(st.sampled_from(ANY_WORDS), min_size=1, max_size=5).map(
        lambda words: ("".join(words) + "\n").encode()
    ),
    st.sampled_from(REALTIME),
    st.binary(max_size=40),
)


def _responses(core: GrblCore) -> int:
    return sum(
        1 for line in bytes(core.out).split(b"\r\n") if line == b"ok" or line.startswith(b"error:")
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.tuples(any_chunk, st.sampled_from([0.0, 0.003, 0.05, 1.0])), max_size=25))
def test_core_survives_any_input(chunks: list[tuple[bytes, float]]) -> None:
    core = GrblCore(record=SimRecord(), now=0.0)
    core.power_up()
    now = 0.0
    for data, pause_s in chunks:
        core.receive(data, now)
        assert len(core.rx) <= 128
        now += pause_s
        core.tick(now)
    for _ in range(50):
        now += 0.5
        core.tick(now)
    record = core.record
    assert record.lines_executed + len(record.errors) <= record.lines_received


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(line_text, min_size=1, max_size=15))
def test_every_line_gets_exactly_one_answer(lines: list[str]) -> None:
    core = GrblCore(record=SimRecord(), now=0.0)
    core.power_up()
    now = 0.0
    for count, line in enumerate(lines, start=1):
        core.receive((line + "\n").encode(), now)
        for _ in range(400):
            if _responses(core) >= count:
                break
            now += 0.05
            core.tick(now)
        assert _responses(core) == count, f"line {count} {line!r}: {bytes(core.out)!r}"
    assert core.record.lines_received == len(lines)
