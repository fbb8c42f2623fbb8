"""Settings: layering, validation messages, the generated secret, masking."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from laserd.settings import (
    ConfigError,
    config_path,
    load_settings,
    read_dotenv,
    server_secret,
)

NO_DOTENV = Path("/nonexistent/.env")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_match_the_operating_contract(tmp_path: Path) -> None:
    s = load_settings(tmp_path / "missing.toml", env={}, dotenv=NO_DOTENV)
    assert s.server.host == "0.0.0.0" and s.server.port == 8080 and s.server.debug is False
    assert s.storage.state_dir == Path("/var/lib/laserd") and s.storage.max_upload_mb == 100
    assert s.machine.simulate is False and s.machine.port == "/dev/ttyUSB0"
    assert s.machine.baudrate == 115200 and s.machine.bed_mm.x == 400
    assert s.simulator.time_scale == 1.0
    assert s.auth.registration == "approval"
    assert (s.auth.access_token_days, s.auth.refresh_token_days) == (8, 30)
    assert s.safety.resume_delay_s == 3
    assert s.safety.laser_enable.pin == 27 and s.safety.laser_enable.mode == "level"


def test_precedence_defaults_file_dotenv_env(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "l.toml",
        "[server]\nport = 9000\nhost = '127.0.0.1'\n[auth]\nbcrypt_rounds = 10\n",
    )
    dotenv = write(tmp_path / ".env", "LASERD_SERVER__PORT=9100\nLASERD_AUTH__BCRYPT_ROUNDS='11'\n")
    s = load_settings(cfg, env={"LASERD_SERVER__PORT": "9200"}, dotenv=dotenv)
    assert s.server.port == 9200  # environment wins
    assert s.auth.bcrypt_rounds == 11  # .env over the file
    assert s.server.host == "127.0.0.1"  # file over defaults
    assert s.server.debug is False  # default


def test_config_path_resolution(tmp_path: Path) -> None:
    assert config_path("a.toml", env={"LASERD_CONFIG": "b.toml"}) == Path("a.toml")
    assert config_path(None, env={"LASERD_CONFIG": "b.toml"}) == Path("b.toml")
    assert config_path(None, env={}) == Path("/etc/laserd/laserd.toml")
    cfg = write(tmp_path / "c.toml", "[server]\nport = 8123\n")
    assert (
        load_settings(None, env={"LASERD_CONFIG": str(cfg)}, dotenv=NO_DOTENV).server.port == 8123
    )


def test_env_values_are_typed_and_nested(tmp_path: Path) -> None:
    env = {
        "LASERD_MACHINE__SIMULATE": "true",
        "LASERD_MACHINE__BED_MM__X": "300.5",
        "LASERD_SERVER__CORS_ORIGINS": '["http://a.local"]',
        "LASERD_SAFETY__INTERLOCKS": '[{name="lid", kind="lid", pin=17}]',
        "LASERD_MACHINE__PORT": "/dev/ttyACM0",
    }
    s = load_settings(tmp_path / "none.toml", env=env, dotenv=NO_DOTENV)
    assert s.machine.simulate is True
    assert s.machine.bed_mm.x == 300.5 and s.machine.bed_mm.y == 400
    assert s.server.cors_origins == ["http://a.local"]
    assert s.safety.interlocks[0].name == "lid" and s.safety.interlocks[0].normally_closed
    assert s.machine.port == "/dev/ttyACM0"


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        ("[server]\nprot = 1\n", {}, "unknown key 'server.prot'"),
        ("[servr]\nport = 1\n", {}, "unknown key 'servr'"),
        ("[server]\nport = 70000\n", {}, "server.port = 70000"),
        ("[server]\nport = 'x'\n", {}, "server.port = 'x'"),
        ("[auth]\nregistration = 'maybe'\n", {}, "'closed', 'approval' or 'open'"),
        ("[safety.laser_enable]\nmode = 'pulse'\n", {}, "safety.laser_enable.mode = 'pulse'"),
        ("", {"LASERD_MACHINE__BAUDRATE": "fast"}, "machine.baudrate = 'fast'"),
        ("", {"LASERD_NOPE__X": "1"}, "unknown key 'nope'"),
        (
            "[[safety.interlocks]]\nname='lid'\npin=1\n[[safety.interlocks]]\nname='lid'\npin=2\n",
            {},
            "repeated: lid",
        ),
        ("[server\nport=1", {}, "not valid TOML"),
        ("[server]\nlog_level = 'loud'\n", {}, "server.log_level = 'loud'"),
    ],
)
def test_invalid_configuration_names_key_value_and_rule(
    tmp_path: Path, text: str, env: dict[str, str], needle: str
) -> None:
    cfg = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env=env, dotenv=NO_DOTENV)
    assert needle in str(err.value)


def test_dotenv_parsing_and_errors(tmp_path: Path) -> None:
    p = write(tmp_path / ".env", '# c\n\nexport LASERD_A__B="x y"\nLASERD_C__D=1\n')
    assert read_dotenv(p) == {"LASERD_A__B": "x y", "LASERD_C__D": "1"}
    bad = write(tmp_path / "bad.env", "JUSTTEXT\n")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        read_dotenv(bad)


def test_secret_generated_once_with_private_mode(tmp_path: Path) -> None:
    s = load_settings(
        tmp_path / "n.toml",
        env={"LASERD_STORAGE__STATE_DIR": str(tmp_path / "st")},
        dotenv=NO_DOTENV,
    )
    first = server_secret(s)
    assert len(first) >= 64  # 256 bits as hex
    path = tmp_path / "st" / "jwt_secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert server_secret(s) == first


def test_configured_secret_is_used_and_masked(tmp_path: Path) -> None:
    env = {"LASERD_AUTH__JWT_SECRET": "s" * 40, "LASERD_MAIL__PASSWORD": "hunter2"}
    s = load_settings(tmp_path / "n.toml", env=env, dotenv=NO_DOTENV)
    assert server_secret(s) == b"s" * 40
    masked = s.masked()
    assert masked["auth"]["jwt_secret"] == "***" and masked["mail"]["password"] == "***"
    assert "hunter2" not in str(masked) and "s" * 40 not in str(masked)
    short = load_settings(
        tmp_path / "n.toml", env={"LASERD_AUTH__JWT_SECRET": "x"}, dotenv=NO_DOTENV
    )
    with pytest.raises(ConfigError, match="at least 32"):
        server_secret(short)


def test_digits_in_the_environment_stay_strings_for_string_keys(tmp_path: Path) -> None:
    env = {"LASERD_MAIL__PASSWORD": "123456", "LASERD_MAIL__USERNAME": "42"}
    s = load_settings(tmp_path / "n.toml", env=env, dotenv=NO_DOTENV)
    assert s.mail.password.get_secret_value() == "123456" and s.mail.username == "42"


def test_unknown_key_lists_the_allowed_ones(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", "[machine]\nbaud = 9600\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env={}, dotenv=NO_DOTENV)
    assert "allowed here:" in str(err.value) and "baudrate" in str(err.value)
    cfg = write(tmp_path / "d.toml", "[[safety.interlocks]]\nname='lid'\npin=1\nkin='lid'\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env={}, dotenv=NO_DOTENV)
    assert "debounce_ms" in str(err.value)


def test_a_damaged_secret_file_stops_start_up(tmp_path: Path) -> None:
    state = tmp_path / "st"
    state.mkdir()
    (state / "jwt_secret").write_text("\n")
    s = load_settings(
        tmp_path / "n.toml", env={"LASERD_STORAGE__STATE_DIR": str(state)}, dotenv=NO_DOTENV
    )
    with pytest.raises(ConfigError, match="damaged"):
        server_secret(s)
