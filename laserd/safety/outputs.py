"""GPIO outputs of the safety supervisor: laser enable (level or heartbeat), air assist, exhaust.

The laser-enable output is written from two threads: the reflex drops it from the input
callback thread, and the event loop raises it (arm, heartbeat). There is deliberately no lock
between them — a lock the loop holds would make the reflex wait for the loop. Instead every
writer that raises the output re-reads the ``armed`` flag right after writing and lowers the
output again when a reflex cleared the flag meanwhile; the reflex clears the flag *before*
it drops the output. Whatever the interleaving, the last write after a trip is "off".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gpiozero import DigitalOutputDevice

from laserd.hardware import GpioPin, PinFactory
from laserd.settings import LaserEnableMode, LaserEnableSettings, OutputSettings

log = logging.getLogger(__name__)


class LaserEnable:
    """The laser-enable output. Off from construction until armed; off on every stop path."""

    def __init__(self, cfg: LaserEnableSettings, pin_factory: PinFactory | None) -> None:
        self.mode = LaserEnableMode(cfg.mode)
        self.pin_number = cfg.pin
        self.half_period_s = 0.5 / cfg.heartbeat_hz
        #: Raw pin levels for "laser allowed" and "laser off".
        self.on_state = bool(cfg.active_high)
        self.off_state = not cfg.active_high
        #: Written by the reflex thread (False) and by the loop (True); see the module doc.
        self.armed = False
        self.device: DigitalOutputDevice | None = None
        self.pin: GpioPin | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        if cfg.pin is not None:
            # initial_value=False: the pin is driven to "off" as it becomes an output.
            self.device = DigitalOutputDevice(
                cfg.pin, active_high=cfg.active_high, initial_value=False, pin_factory=pin_factory
            )
            self.pin = self.device.pin

    @property
    def present(self) -> bool:
        return self.pin is not None

    def drop(self) -> None:
        """Reflex path: clear the flag first, then drive the pin off. No logging, no locks."""
        self.armed = False
        pin = self.pin
        if pin is not None:
            pin.state = self.off_state

    def raise_(self, still_allowed: Callable[[], bool]) -> bool:
        """Loop only: arm and drive the output; False when a trip overtook us (output off)."""
        self.armed = True
        if self.mode == LaserEnableMode.level and self.pin is not None:
            self.pin.state = self.on_state
        if not self.armed or not still_allowed():
            self.drop()
            return False
        beating = self._heartbeat is not None and not self._heartbeat.done()
        if self.mode == LaserEnableMode.heartbeat and self.pin is not None and not beating:
            self._heartbeat = asyncio.get_running_loop().create_task(
                self._beat(), name="laser-enable-heartbeat"
            )
        return True

    async def _beat(self) -> None:
        """Square wave on the loop: a frozen or dead loop freezes it, so the relay drops."""
        pin = self.pin
        if pin is None:  # started only for a wired output; closed since
            return
        level = False
        try:
            while self.armed:
                level = not level
                pin.state = self.on_state if level else self.off_state
                if not self.armed:  # a reflex cleared the flag between the check and the write
                    break
                await asyncio.sleep(self.half_period_s)
        finally:
            pin.state = self.off_state

    def lower(self) -> None:
        """Loop: disarm and stop the heartbeat. The output is off when this returns."""
        self.drop()
        task, self._heartbeat = self._heartbeat, None
        if task is not None and not task.done():
            task.cancel()

    async def close(self) -> None:
        self.lower()
        task = self._heartbeat
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        if self.device is not None:
            self.drop()
            self.device.close()
            self.device = None
            self.pin = None

    @property
    def value(self) -> bool:
        """Whether the pin is at its "on" level right now (a heartbeat reads half the time)."""
        return self.pin is not None and bool(self.pin.state) == self.on_state


class Relay:
    """An on/off output (air assist, exhaust), off at construction and on close."""

    def __init__(self, name: str, cfg: OutputSettings, pin_factory: PinFactory | None) -> None:
        self.name = name
        self.run_on_s = cfg.run_on_s
        self.device = DigitalOutputDevice(
            cfg.pin, active_high=cfg.active_high, initial_value=False, pin_factory=pin_factory
        )

    @property
    def is_on(self) -> bool:
        return self.device is not None and bool(self.device.value)

    def set(self, on: bool) -> None:
        if self.device is None:
            return
        if on != self.is_on:
            log.info("%s %s", self.name, "on" if on else "off")
        self.device.value = on

    def close(self) -> None:
        if self.device is not None:
            self.device.off()
            self.device.close()
            self.device = None
