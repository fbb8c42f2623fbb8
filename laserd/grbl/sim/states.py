"""Names shared by the controller core and its command mixin."""

IDLE, CYCLE, HOLD, JOG, ALARM, DOOR, CHECK, HOMING, SLEEP = (
    "Idle", "Run", "Hold", "Jog", "Alarm", "Door", "Check", "Home", "Sleep",
)  # fmt: skip
MOVING_STATES = (CYCLE, JOG)
LINE_BUFFER_CHARS = 80
