"""One typed settings object for the whole daemon.

Layers, lowest first: built-in defaults < TOML file < ``.env`` file < ``LASERD_*`` environment.
Every section forbids unknown keys so that a typo in ``/etc/laserd/laserd.toml`` stops
start-up with a message naming the key instead of being silently ignored (a mistyped
interlock pin would otherwise leave a lid unwatched).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from laserd.bridge.config import BridgeSettings, DiscoverySettings

DEFAULT_CONFIG_PATH = Path("/etc/laserd/laserd.toml")
ENV_PREFIX = "LASERD_"
SECRET_FILE = "jwt_secret"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key, value and what is allowed."""


class _Section(BaseModel):
    # Environment values are read as TOML, so LASERD_MAIL__PASSWORD=123456 arrives as a
    # number: a string field takes it as the digits it was.
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, coerce_numbers_to_str=True
    )


class ServerSettings(_Section):
    host: str = Field("0.0.0.0", description="bind address")
    port: int = Field(8080, ge=1, le=65535, description="TCP port of the web UI and API")
    debug: bool = Field(False, description="debug endpoints (/debug/*); never in production")
    log_level: str = Field("info", pattern=r"^(debug|info|warning|error)$", description="log level")
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed to call the API from a browser"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="peer addresses whose X-Forwarded-For is believed (else it is ignored)",
    )
    max_json_kb: int = Field(256, ge=1, le=65536, description="largest JSON request body")
    access_log: bool = Field(True, description="one log line per request")
    max_connections: int = Field(
        256, ge=1, le=100_000, description="open HTTP connections (WebSockets included)"
    )
    max_connections_per_address: int = Field(
        32, ge=1, le=100_000, description="open HTTP connections per client address"
    )
    header_timeout_s: float = Field(
        15, gt=0, le=3600, description="time to send a complete request head; idle keep-alive"
    )
    max_websockets: int = Field(128, ge=1, le=10_000, description="open live connections")
    max_websockets_per_address: int = Field(
        16, ge=1, le=10_000, description="open live connections per client address"
    )


class StorageSettings(_Section):
    state_dir: Path = Field(
        Path("/var/lib/laserd"), description="database, uploads, generated G-code, secrets"
    )
    max_upload_mb: int = Field(100, ge=1, le=10_000, description="largest upload")
    min_free_mb: int = Field(
        50, ge=0, description="uploads and processing are refused when less than this is free"
    )


class BedSize(_Section):
    x: float = Field(400, gt=0, le=10_000)
    y: float = Field(400, gt=0, le=10_000)


class MachineSettings(_Section):
    simulate: bool = Field(False, description="a built-in simulated GRBL on a pty")
    port: str = Field("/dev/ttyUSB0", description="serial device of the controller")
    baudrate: int = Field(115200, ge=1200, le=4_000_000)
    bed_mm: BedSize = Field(default_factory=BedSize)
    rx_buffer_bytes: int = Field(128, ge=16, le=16384, description="controller receive buffer")
    status_hz_idle: float = Field(5.0, gt=0, le=50)
    status_hz_running: float = Field(10.0, gt=0, le=50)
    reconnect_s: float = Field(2.0, gt=0, le=300, description="pause between reconnect attempts")
    autoconnect: bool = Field(True, description="open the port at start and after unplug")


class SimulatorSettings(_Section):
    time_scale: float = Field(1.0, gt=0, le=10_000, description="> 1 runs motion faster")


class Registration(StrEnum):
    closed = "closed"
    approval = "approval"
    open = "open"


class AuthSettings(_Section):
    registration: Registration = Registration.approval
    access_token_days: float = Field(8, gt=0, le=365)
    refresh_token_days: float = Field(30, gt=0, le=3650)
    jwt_secret: SecretStr | None = Field(
        None, description="server pepper for token keys; generated into state_dir when unset"
    )
    bcrypt_rounds: int = Field(12, ge=4, le=16)
    bcrypt_concurrency: int = Field(2, ge=1, le=16, description="hashes computed at once")
    min_password_length: int = Field(8, ge=1, le=72)
    login_ip_max_failures: int = Field(20, ge=1, description="failures per address per window")
    login_ip_window_s: float = Field(300, gt=0)
    account_max_failures: int = Field(
        5, ge=1, description="failures from one address before it is locked out of an account"
    )
    account_lock_s: float = Field(900, gt=0)
    account_slow_max_failures: int = Field(
        100, ge=1, description="failures per account from all addresses per slow window"
    )
    account_slow_window_s: float = Field(86400, gt=0)
    setup_max_attempts: int = Field(10, ge=1, description="setup-code tries per address per window")
    cookie_secure: bool = Field(False, description="mark the refresh cookie Secure (HTTPS only)")


class MailSettings(_Section):
    smtp_host: str = Field("", description="empty: mail is written to the log only")
    smtp_port: int = Field(587, ge=1, le=65535)
    username: str = ""
    password: SecretStr = SecretStr("")
    sender: str = Field("laserd@localhost", description="From: address")
    starttls: bool = True
    timeout_s: float = Field(10, gt=0)


class ProcessingSettings(_Section):
    workers: int = Field(1, ge=1, le=8, description="files processed at once (off the loop)")
    max_image_megapixels: float = Field(80, gt=0, le=1000, description="decompression-bomb guard")
    max_power_s: int = Field(1000, ge=1, description="controller $30: S value for 100 % power")
    max_gcode_mb: int = Field(
        2048,
        ge=1,
        le=1_000_000,
        description="largest G-code one file may make (predicted before converting: 422)",
    )


class LaserEnableMode(StrEnum):
    level = "level"
    heartbeat = "heartbeat"


class LaserEnableSettings(_Section):
    pin: int | None = Field(27, ge=0, le=63, description="GPIO of the laser-enable output")
    mode: LaserEnableMode = LaserEnableMode.level
    cuts_beam: bool = Field(True, description="the output really removes laser power")
    heartbeat_hz: float = Field(50, gt=0, le=1000)
    active_high: bool = True


class StartButtonSettings(_Section):
    pin: int = Field(22, ge=0, le=63)
    timeout_s: float = Field(120, gt=0)
    pull_up: bool = True
    bounce_ms: int = Field(20, ge=0, le=1000)


class InterlockKind(StrEnum):
    lid = "lid"
    estop = "estop"
    coolant = "coolant"
    key = "key"
    custom = "custom"


class InterlockSettings(_Section):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    kind: InterlockKind = InterlockKind.custom
    pin: int = Field(ge=0, le=63)
    normally_closed: bool = True
    pull_up: bool = True
    debounce_ms: int = Field(20, ge=0, le=5000)


class OutputSettings(_Section):
    pin: int = Field(ge=0, le=63)
    active_high: bool = True
    run_on_s: float = Field(0, ge=0, le=3600, description="keeps running this long after a job")


class SafetySettings(_Section):
    resume_delay_s: float = Field(3, ge=0, le=3600)
    laser_enable: LaserEnableSettings = Field(default_factory=LaserEnableSettings)
    start_button: StartButtonSettings | None = None
    interlocks: list[InterlockSettings] = Field(default_factory=list)
    air_assist: OutputSettings | None = None
    exhaust: OutputSettings | None = None

    @field_validator("interlocks")
    @classmethod
    def _unique_names(cls, value: list[InterlockSettings]) -> list[InterlockSettings]:
        names = [i.name for i in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"interlock names must be unique; repeated: {', '.join(dupes)}")
        return value


class Settings(_Section):
    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    machine: MachineSettings = Field(default_factory=MachineSettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    processing: ProcessingSettings = Field(default_factory=ProcessingSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings)
    bridge: BridgeSettings = Field(default_factory=BridgeSettings)

    # Derived paths: one place that says where things live inside the state folder.
    @property
    def db_path(self) -> Path:
        return self.storage.state_dir / "laserd.db"

    @property
    def uploads_dir(self) -> Path:
        return self.storage.state_dir / "uploads"

    @property
    def generated_dir(self) -> Path:
        return self.storage.state_dir / "generated"

    @property
    def tmp_dir(self) -> Path:
        return self.storage.state_dir / "tmp"

    def gcode_path(self, file_id: int) -> Path:
        """The normalised G-code that the streamer sends for a file (written by processing)."""
        return self.generated_dir / f"{file_id}.gcode"

    def preview_path(self, file_id: int, *, thumb: bool = False) -> Path:
        return self.generated_dir / (f"{file_id}.thumb.png" if thumb else f"{file_id}.png")

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data with every secret replaced by ``***``."""
        data = self.model_dump(mode="json")
        data["auth"]["jwt_secret"] = "***" if self.auth.jwt_secret else None
        data["mail"]["password"] = "***" if self.mail.password.get_secret_value() else ""
        return data


# ---------------------------------------------------------------------------- loading


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _parse_scalar(raw: str) -> Any:
    """Read an environment value as TOML (numbers, booleans, arrays, tables), else a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _env_layer(env: dict[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if any(not p for p in path):
            raise ConfigError(f"environment variable {name}: empty key segment")
        node = layer
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name}: {part} is not a section")
        node[path[-1]] = _parse_scalar(raw)
    return layer


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines; ``#`` comments; optional single or double quotes around the value."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{lineno}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The field names of the section at ``loc`` (for the unknown-key message)."""
    model: Any = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if model is None:
            return []
    return sorted(getattr(model, "model_fields", {}))


def _format_errors(err: ValidationError, merged: dict[str, Any]) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        value = e.get("input")
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(e["loc"][:-1])
            hint = f"; allowed here: {', '.join(allowed)}" if allowed else ""
            lines.append(f"unknown key {key!r} (value {value!r}); check the spelling{hint}")
        else:
            lines.append(f"{key} = {value!r}: {e['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def config_path(cli_path: str | Path | None, env: Mapping[str, str] | None = None) -> Path:
    """--config, else $LASERD_CONFIG, else /etc/laserd/laserd.toml."""
    environ = os.environ if env is None else env
    if cli_path:
        return Path(cli_path)
    if environ.get("LASERD_CONFIG"):
        return Path(environ["LASERD_CONFIG"])
    return DEFAULT_CONFIG_PATH


def load_settings(
    path: str | Path | None = None,
    *,
    env: dict[str, str] | None = None,
    dotenv: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Build the settings from all layers; raise :class:`ConfigError` with a precise message."""
    env = dict(os.environ if env is None else env)
    file_path = config_path(path, env)
    data: dict[str, Any] = {}
    if file_path.is_file():
        try:
            data = tomllib.loads(file_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file_path}: not valid TOML: {exc}") from exc
    elif path is not None and not file_path.exists() and str(path) != str(DEFAULT_CONFIG_PATH):
        # An explicitly named file that is missing is still fine (defaults), but say so.
        pass
    dotenv_values = read_dotenv(dotenv if dotenv is not None else Path(".env"))
    merged = _deep_merge(data, _env_layer(dotenv_values))
    merged = _deep_merge(merged, _env_layer(env))
    if overrides:
        merged = _deep_merge(merged, overrides)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, merged)) from None


def ensure_state_dirs(settings: Settings) -> None:
    """Create the state folder tree with private permissions."""
    for d in (
        settings.storage.state_dir,
        settings.uploads_dir,
        settings.generated_dir,
        settings.tmp_dir,
    ):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        # mkdir's mode does nothing for a folder that already exists (made by hand, by a
        # package, by an older version): the database, secrets and uploads must stay private.
        if d.stat().st_mode & 0o077:
            try:
                d.chmod(0o700)
            except OSError as exc:  # not ours to change: say so, do not refuse to start
                logging.getLogger(__name__).warning(
                    "%s is readable by others and could not be made private: %s", d, exc
                )


def server_secret(settings: Settings) -> bytes:
    """The server pepper: configured, or generated once (256 bits) into the state folder, 0600."""
    if settings.auth.jwt_secret is not None:
        value = settings.auth.jwt_secret.get_secret_value()
        if len(value) < 32:
            raise ConfigError("auth.jwt_secret: must be at least 32 characters")
        return value.encode()
    path = settings.storage.state_dir / SECRET_FILE
    if path.exists():
        try:
            value = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the token secret: {exc}") from exc
        if len(value) < 64:
            raise ConfigError(
                f"{path} is damaged (shorter than 256 bits); restore it from a backup, or "
                "delete it to generate a new one (every login then ends)"
            )
        return value.encode()
    settings.storage.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(value + "\n")
    return value.encode()


def public_url(settings: Settings) -> str:
    """Where people reach the UI: our own host name and port, never a client's ``Host``
    header (which the client chooses: a reset link built from it could leak the token)."""
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname() or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port}/"


def dump_json(settings: Settings) -> str:
    return json.dumps(settings.masked(), indent=2, sort_keys=False)
