"""GrblLink against a small scripted GRBL peer on a real pty.

The peer is deliberately tiny (it is not the simulator): it answers lines with ``ok`` after a
configurable delay, counts the bytes waiting in its 128-byte receive buffer (so an overrun by
the sender is recorded), answers ``?`` with a status report, resets on 0x18 and can be told to
send an error, an alarm or to vanish. It exercises the link's own logic in isolation; the
simulator tests cover the full behaviour.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import select
import struct
import termios
import threading
import time
import tty

import pytest

from laserd.events import EventHub
from laserd.grbl.controller import SerialLine, SettingsChanged, WireLine
from laserd.grbl.errors import GrblAlarm, GrblError, LineRefused, LinkDown
from laserd.grbl.link import GrblLink
from laserd.grbl.protocol import RT, Position

BANNER = b"\r\nGrbl 1.1h ['$' for help]\r\n"


class FakePeer:
    def __init__(self, *, banner_on_open: bool = True, line_delay_s: float = 0.0,
                 rx_size: int = 128) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        # Packet mode: the master also reads a control byte when the other side flushes its
        # input, which pyserial does on every open. The peer answers with its banner, as a
        # board that resets when its port opens (the banner cannot be written any earlier:
        # the flush would drop it, and the handshake would then time out into a soft reset).
        fcntl.ioctl(self.master, termios.TIOCPKT, struct.pack("i", 1))
        self.path = os.ttyname(self.slave)
        self.banner_on_open = banner_on_open
        self.line_delay_s = line_delay_s
        self.rx_size = rx_size
        self.rx = bytearray()
        self.max_rx = 0
        self.overflows = 0
        self.lines: list[str] = []
        self.realtime: list[int] = []
        self.error_on: dict[int, int] = {}
        self.alarm_on: dict[int, int] = {}
        self.state = "Idle"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> FakePeer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def unplug(self) -> None:
        """Close both ends: the link's reads fail as after a USB unplug."""
        self._stop.set()
        self._thread.join(5)
        os.close(self.master)
        os.close(self.slave)
        self.master = self.slave = -1

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def _status(self) -> bytes:
        free = self.rx_size - len(self.rx)
        return f"<{self.state}|MPos:1.000,2.000,0.000|Bf:15,{free}|FS:0,0>\r\n".encode()

    def _run(self) -> None:
        next_line_at = 0.0
        while not self._stop.is_set():
            wait_s = 0.005
            if b"\n" in self.rx and not self.state.startswith("Hold"):
                wait_s = min(wait_s, max(0.0, next_line_at - time.monotonic()))
            r, _, _ = select.select([self.master], [], [], wait_s)
            if r:
                try:
                    packet = os.read(self.master, 4096)
                except OSError:
                    packet = b""
                data = packet[1:]
                if packet and packet[0] & termios.TIOCPKT_FLUSHREAD and self.banner_on_open:
                    self.send(BANNER)  # the port was opened
                for b in data:
                    if b in (0x3F, 0x21, 0x7E, 0x18) or b >= 0x80:
                        self.realtime.append(b)
                        if b == 0x3F:
                            self.send(self._status())
                        elif b == 0x18:
                            self.rx.clear()
                            self.state = "Idle"
                            self.send(BANNER)
                        elif b == 0x21:
                            self.state = "Hold:0"
                        elif b == 0x7E:
                            self.state = "Idle"
                        continue
                    self.rx.append(b)
                    if len(self.rx) > self.rx_size:
                        self.overflows += 1
                    self.max_rx = max(self.max_rx, len(self.rx))
            now = time.monotonic()
            while b"\n" in self.rx and now >= next_line_at:
                if self.state.startswith("Hold"):
                    break
                line, _, rest = bytes(self.rx).partition(b"\n")
                self.rx = bytearray(rest)
                text = line.decode().strip()
                self.lines.append(text)
                n = len(self.lines)
                if text == "$$":
                    self.send(b"$0=10\r\n$30=1000\r\n$32=1\r\n")
                elif text == "$I":
                    self.send(b"[VER:1.1h.20190825:]\r\n[OPT:VL,15,128]\r\n")
                if n in self.alarm_on:
                    self.rx.clear()
                    self.state = "Alarm"
                    self.send(f"ALARM:{self.alarm_on[n]}\r\n".encode())
                    break
                if n in self.error_on:
                    self.send(f"error:{self.error_on[n]}\r\n".encode())
                else:
                    self.send(b"ok\r\n")
                next_line_at = now + self.line_delay_s


@pytest.fixture
def make_peer():
    peers: list[FakePeer] = []

    def make(**kw) -> FakePeer:
        peer = FakePeer(**kw).start()
        peers.append(peer)
        return peer

    yield make
    for p in peers:
        if p.master != -1:
            p.stop()


async def _link(peer: FakePeer, banner_timeout_s: float = 0.5, **kw) -> GrblLink:
    link = GrblLink(peer.path, 115200, reconnect_s=0.2, banner_timeout_s=banner_timeout_s, **kw)
    await link.start()
    await link.connect(timeout_s=10)
    return link


async def test_handshake_reads_settings_and_build_info(make_peer):
    peer = make_peer()
    # (the banner comes as the port opens; the long timeout only matters on a busy machine)
    link = await _link(peer, banner_timeout_s=10)
    try:
        assert link.connected
        assert link.state == "idle"
        assert link.settings["$32"] == "1"
        assert link.firmware == "Grbl 1.1h.20190825"
        assert link.build_options is not None and link.build_options.rx_buffer_bytes == 128
        assert peer.lines[:2] == ["$$", "$I"]
        assert RT.RESET not in peer.realtime  # the banner came: no reset needed
        assert link.status is not None and link.status.mpos == Position(1.0, 2.0, 0.0)
        assert link.connected is True and link.port == peer.path
    finally:
        await link.close()


async def test_a_port_opened_late_still_gets_its_banner_without_a_reset(make_peer):
    """pyserial flushes the input on open: only a banner printed after that counts (a board
    resetting on open prints it then, however long after power-up the port is opened)."""
    peer = make_peer()
    await asyncio.sleep(0.3)
    link = await _link(peer, banner_timeout_s=10)
    try:
        assert link.connected
        assert RT.RESET not in peer.realtime
    finally:
        await link.close()


async def test_handshake_without_banner_sends_soft_reset(make_peer):
    peer = make_peer(banner_on_open=False)
    link = await _link(peer)
    try:
        assert link.connected
        assert RT.RESET in peer.realtime
    finally:
        await link.close()


async def test_command_error_raises_with_meaning(make_peer):
    peer = make_peer()
    link = await _link(peer)
    try:
        peer.error_on[len(peer.lines) + 1] = 20
        with pytest.raises(GrblError) as info:
            await link.command("G5 X1")
        assert info.value.grbl_code == 20
        assert "unsupported" in info.value.meaning
        assert await link.command("G0 X1") == []
    finally:
        await link.close()


async def test_refuses_realtime_characters_in_commands(make_peer):
    peer = make_peer()
    link = await _link(peer)
    try:
        with pytest.raises(LineRefused):
            await link.command("G1 X1 !")
        assert await link.command("G1 X1 F100 (why? because!)") == []
        assert peer.lines[-1] == "G1X1F100"
    finally:
        await link.close()


async def test_stream_never_overruns_the_buffer(make_peer):
    peer = make_peer(line_delay_s=0.0005)
    link = await _link(peer)
    try:
        lines = [(i, f"G1 X{i % 97}.{i % 10} Y{i % 13}.25 S{i % 1000}") for i in range(1, 2001)]
        lines.insert(500, (0, "; a comment-only line"))
        progress = await link.stream(lines)
        assert progress.lines_acked == 2001
        assert peer.overflows == 0
        assert 100 < peer.max_rx <= 128  # kept full, never over
        sent = [line for line in peer.lines if line.startswith("G1")]
        assert sent[0] == "G1X1.1Y1.25S1" and len(sent) == 2000
    finally:
        await link.close()


async def test_stream_error_names_the_line(make_peer):
    peer = make_peer(line_delay_s=0.0005)
    link = await _link(peer)
    try:
        peer.error_on[len(peer.lines) + 300] = 33
        lines = [(i, f"G1X{i}Y1") for i in range(1, 1001)]
        with pytest.raises(GrblError) as info:
            await link.stream(lines)
        assert info.value.lineno == 300
        assert info.value.line == "G1X300Y1"
        assert info.value.grbl_code == 33
    finally:
        await link.close()


async def test_alarm_mid_stream_fails_it(make_peer):
    peer = make_peer(line_delay_s=0.0005)
    link = await _link(peer)
    try:
        peer.alarm_on[len(peer.lines) + 200] = 1
        with pytest.raises(GrblAlarm) as info:
            await link.stream([(i, f"G1X{i}") for i in range(1, 1001)])
        assert info.value.alarm_code == 1
        assert link.alarm is not None and link.alarm.code == 1
        assert link.state == "alarm"
    finally:
        await link.close()


async def test_realtime_from_another_thread_while_loop_is_blocked(make_peer):
    peer = make_peer()
    link = await _link(peer)
    try:
        done = threading.Event()
        results: list[bool] = []

        def other_thread() -> None:
            results.append(link.realtime(RT.SAFETY_DOOR))
            done.set()

        threading.Thread(target=other_thread).start()
        time.sleep(0.3)  # the loop is stalled on purpose; the byte still goes out
        assert done.is_set() and results == [True]
        deadline = time.monotonic() + 5
        while RT.SAFETY_DOOR not in peer.realtime and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert RT.SAFETY_DOOR in peer.realtime
    finally:
        await link.close()
    assert link.realtime(RT.STATUS) is False


async def test_unplug_fails_stream_and_reconnects(make_peer):
    peer = make_peer(line_delay_s=0.002)
    hub = EventHub()
    link = await _link(peer, hub=hub)
    try:
        task = asyncio.create_task(link.stream([(i, f"G1X{i}") for i in range(1, 5001)]))
        await asyncio.sleep(0.3)
        peer.unplug()
        with pytest.raises(LinkDown):
            await asyncio.wait_for(task, 5)
        assert link.state == "disconnected"
        assert not link.connected
        assert link.realtime(RT.STATUS) is False
    finally:
        await link.close()


async def test_disconnect_and_connect_on_request(make_peer):
    peer = make_peer()
    link = await _link(peer)
    try:
        await link.disconnect()
        assert link.state == "disconnected"
        with pytest.raises(LinkDown):
            await link.command("G0X1")
        await link.connect(timeout_s=10)
        assert link.connected
        assert await link.command("G0X1") == []
    finally:
        await link.close()


async def test_connect_to_a_missing_port_raises_and_autoconnect_off_stays_put(tmp_path):
    link = GrblLink(str(tmp_path / "nothing-here"), 115200, reconnect_s=0.1,
                    autoconnect=False)
    await link.start()
    try:
        await asyncio.sleep(0.2)
        assert link.state == "disconnected"  # autoconnect off: no attempt by itself
        with pytest.raises(LinkDown):
            await link.connect(timeout_s=10)
        assert not link.connected
    finally:
        await link.close()


async def test_learns_the_receive_buffer_from_build_options(make_peer):
    peer = make_peer()
    link = await _link(peer, rx_buffer_bytes=64)
    try:
        assert link.rx_buffer_bytes == 128  # from [OPT:VL,15,128]
    finally:
        await link.close()


async def test_settings_changes_are_reported_once_per_command(make_peer):
    """The handshake's ``$$`` listing is one SettingsChanged (not one per line); writing a
    ``$N=v`` reports that key; writing the same value again, or re-reading an unchanged
    listing, reports nothing (the time estimates re-estimate files on each report)."""
    peer = make_peer()
    hub = EventHub()
    changes: list[SettingsChanged] = []
    hub.on(SettingsChanged, changes.append)
    link = await _link(peer, hub=hub)
    try:
        assert [c.changed for c in changes] == [frozenset({"$0", "$30", "$32"})]
        assert changes[0].settings == {"$0": "10", "$30": "1000", "$32": "1"}
        await link.command("$30=500")
        assert changes[-1].changed == frozenset({"$30"})
        assert changes[-1].settings["$30"] == "500" == link.settings["$30"]
        await link.command("$30=500")
        await link.command("G4P0")
        assert len(changes) == 2
        await link.command("$$")  # the peer lists $30=1000 again: a change back
        assert changes[-1].changed == frozenset({"$30"}) and len(changes) == 3
        await link.command("$$")
        assert len(changes) == 3
    finally:
        await link.close()


async def test_line_listener_sees_console_traffic_not_status(make_peer):
    peer = make_peer()
    hub = EventHub()
    link = await _link(peer, hub=hub)
    seen: list[tuple[str, str]] = []
    everything: list[tuple[str, str]] = []

    hub.on(SerialLine, lambda e: seen.append((e.direction, e.line)))
    hub.on(WireLine, lambda e: everything.append((e.direction, e.line)))
    try:
        assert await link.command("$$") == ["$0=10", "$30=1000", "$32=1"]
        await link.stream([(1, "G0 X1"), (2, "G0 X2")])
        await link.wait_for_status(lambda s: True, 5)
        assert ("tx", "$$") in seen and ("rx", "$32=1") in seen and ("rx", "ok") in seen
        assert not any(line.startswith("<") for _, line in seen)
        assert ("tx", "G0X1") not in seen
        assert ("tx", "G0X1") in everything
        assert any(line.startswith("<") for _, line in everything)
    finally:
        await link.close()


async def test_command_queued_during_a_reset_goes_out_after_the_banner(make_peer):
    peer = make_peer()
    link = await _link(peer)
    try:
        reset = asyncio.create_task(link.reset())
        await asyncio.sleep(0)
        cmd = asyncio.create_task(link.command("G0 X7"))
        await asyncio.wait_for(reset, 10)
        assert await asyncio.wait_for(cmd, 10) == []
        assert peer.lines[-1] == "G0X7"
        assert link.bytes_in_flight == 0
        assert await link.command("G0 X8") == []  # counting still in step
    finally:
        await link.close()
