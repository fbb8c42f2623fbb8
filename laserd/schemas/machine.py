"""Models of the machine, jobs, interlocks and live-update API (API.md "Machine and jobs")."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from laserd.machine_control import FRAME_MAX_POWER_PCT
from laserd.schemas.common import MAX_ID, PageQuery, StrictModel

JobState = Literal[
    "queued",
    "waiting_start",
    "running",
    "paused",
    "completed",
    "failed",
    "cancelled",
    "interrupted",
]


class Position(BaseModel):
    x: float
    y: float
    z: float


class Overrides(BaseModel):
    feed: int
    rapid: int
    power: int


class Buffer(BaseModel):
    planner: int | None
    rx: int | None


class Alarm(BaseModel):
    code: int
    message: str


class InterlockSummary(BaseModel):
    ok: bool
    open: list[str]


class JobOut(BaseModel):
    id: int
    file_id: int | None
    user_id: int | None
    file_name: str
    state: JobState
    lines_total: int
    lines_sent: int
    lines_acked: int
    progress: float = Field(ge=0, le=1)
    created_at: str
    started_at: str | None
    finished_at: str | None
    elapsed_s: float
    eta_s: float | None = Field(
        description="seconds left: the planner model's time for the lines not yet "
        "acknowledged, corrected by the pace observed so far"
    )
    estimated_s: float | None = Field(
        None, description="the whole job's estimate from the file's stats (while active)"
    )
    error: str | None
    pause_reason: str | None
    source: Literal["web", "bridge"] = Field(
        "web", description="bridge: a GRBL bridge session (a desktop sender through laserd)"
    )
    peer: str | None = Field(None, description="the bridge client's address")
    end_reason: str | None = Field(
        None, description="how a bridge session ended (client_closed, ended_by_user, ...)"
    )


class BedMm(BaseModel):
    x: float
    y: float


class MachineOut(BaseModel):
    state: str
    connected: bool
    port: str
    firmware: str | None
    mpos: Position | None
    wpos: Position | None
    feed: float | None
    power: float | None
    overrides: Overrides | None
    buffer: Buffer | None
    alarm: Alarm | None
    interlocks: InterlockSummary
    job: JobOut | None
    framing: bool
    bed_mm: BedMm | None = Field(None, description="the bed's size ([machine] bed_mm)")


class ReplyLines(BaseModel):
    lines: list[str] = Field(description="the controller's reply lines before its ok")


def _one_of_required(*names: str) -> dict[str, Any]:
    """JSON Schema for "at least one of these is given and not null"."""
    return {
        "anyOf": [
            {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in names
        ]
    }


class JogIn(StrictModel):
    # The schema states the "at least one axis" rule the validator enforces.
    model_config = ConfigDict(json_schema_extra=_one_of_required("x", "y", "z"))

    x: float | None = Field(None, ge=-10_000, le=10_000)
    y: float | None = Field(None, ge=-10_000, le=10_000)
    z: float | None = Field(None, ge=-1_000, le=1_000)
    # At least 1 mm/min: a feed that rounds to F0 in G-code is a jog GRBL never finishes.
    feed: float = Field(ge=1, le=100_000, description="mm/min")
    relative: bool = True

    @model_validator(mode="after")
    def _some_axis(self) -> JogIn:
        if self.x is None and self.y is None and self.z is None:
            raise ValueError("give at least one of x, y, z")
        return self


class FrameIn(StrictModel):
    file_id: int = Field(ge=1, le=MAX_ID)
    power_pct: float = Field(
        0, ge=0, le=FRAME_MAX_POWER_PCT, description="0: laser off (default); capped low"
    )
    feed_mm_min: float | None = Field(None, ge=1, le=100_000)


class OverridesIn(StrictModel):
    model_config = ConfigDict(json_schema_extra=_one_of_required("feed", "power", "rapid"))

    feed: int | None = Field(None, ge=10, le=200)
    power: int | None = Field(None, ge=10, le=200)
    rapid: Literal[25, 50, 100] | None = None

    @model_validator(mode="after")
    def _something(self) -> OverridesIn:
        if self.feed is None and self.power is None and self.rapid is None:
            raise ValueError("give at least one of feed, power, rapid")
        return self


class ConsoleIn(StrictModel):
    line: str = Field(
        min_length=1,
        max_length=256,
        description="one line; GRBL takes at most 79 characters, longer ones are refused",
        json_schema_extra={"maxLength": 79},
    )


#: GRBL's settings are integers, masks, rates and lengths well inside this; anything bigger is a
#: typo, and would not fit GRBL's line once written out (it was refused mid-way through a write).
SETTING_LIMIT = 1_000_000
SettingValue = Annotated[float, Field(ge=-SETTING_LIMIT, le=SETTING_LIMIT)]


class ControllerSettingsOut(RootModel[dict[str, float]]):
    """Controller ``$`` settings as the controller reports them, e.g. ``{"$30": 1000}``."""


class ControllerSettings(RootModel[dict[str, SettingValue]]):
    """Controller ``$`` settings to write, e.g. ``{"$30": 1000, "$32": 1}``."""

    model_config = ConfigDict(json_schema_extra={"propertyNames": {"pattern": r"^\$\d{1,3}$"}})


class InterlockOut(BaseModel):
    name: str
    kind: Literal["lid", "estop", "coolant", "key", "start", "custom"]
    pin: int | None
    safe: bool
    since: str | None


class GpioDriveIn(StrictModel):
    safe: bool = Field(description="true: the input reads safe (closed / released)")


class JobCreate(StrictModel):
    file_id: int = Field(ge=1, le=MAX_ID)


class JobsQuery(PageQuery):
    state: JobState | None = None
