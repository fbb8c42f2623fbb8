"""systemd/install.sh and uninstall.sh run for real against a temporary root, and in
--dry-run mode against the live one (which must stay untouched)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "systemd" / "install.sh"
UNINSTALL = REPO / "systemd" / "uninstall.sh"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="useradd --prefix needs root")


def _run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A minimal system root: account databases with root and dialout only."""
    root = tmp_path / "root"
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\ndialout:x:20:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\ndialout:*::\n")
    for name in ("shadow", "gshadow"):
        (etc / name).chmod(0o640)
    return root


def _entry(path: Path, name: str) -> list[str] | None:
    for line in path.read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields
    return None


def test_scripts_are_valid_bash():
    for script in (INSTALL, UNINSTALL):
        assert subprocess.run(["bash", "-n", str(script)], timeout=30).returncode == 0
        assert os.access(script, os.X_OK), f"{script} is not executable"


def test_dry_run_prints_every_step_and_changes_nothing(tmp_path: Path):
    watched = [Path("/etc/passwd"), Path("/etc/group"), Path("/etc/systemd/system/laserd.service")]
    before = {p: _digest(p) for p in watched}
    result = _run(INSTALL, "--dry-run", "--skip-apt")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "useradd" in out or "user laserd exists" in out
    assert "-m venv /opt/laserd/venv" in out
    assert f"install --quiet --upgrade {REPO}\\[systemd\\]" in out
    assert "/etc/laserd/laserd.toml" in out
    assert "/etc/systemd/system/laserd.service" in out
    assert "systemctl enable laserd.service" in out
    assert {p: _digest(p) for p in watched} == before


@needs_root
def test_install_into_a_root_lays_out_user_config_state_and_enabled_unit(target: Path):
    host_passwd = _digest(Path("/etc/passwd"))
    result = _run(INSTALL, "--root", target, "--skip-venv")
    assert result.returncode == 0, result.stdout + result.stderr

    user = _entry(target / "etc/passwd", "laserd")
    assert user is not None and user[5] == "/var/lib/laserd" and user[6] == "/usr/sbin/nologin"
    assert int(user[2]) < 1000  # a system account
    for group in ("dialout", "gpio"):
        entry = _entry(target / "etc/group", group)
        assert entry is not None and "laserd" in entry[3].split(","), group
    laserd_gid = int(_entry(target / "etc/group", "laserd")[2])

    unit = target / "etc/systemd/system/laserd.service"
    assert unit.read_bytes() == (REPO / "systemd/laserd.service").read_bytes()
    wants = target / "etc/systemd/system/multi-user.target.wants/laserd.service"
    assert wants.is_symlink() and os.readlink(wants) == "/etc/systemd/system/laserd.service"

    conf = target / "etc/laserd/laserd.toml"
    assert conf.read_bytes() == (REPO / "config/laserd.toml").read_bytes()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640 and conf.stat().st_gid == laserd_gid

    state = target / "var/lib/laserd"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert state.stat().st_uid == int(user[2])
    assert _digest(Path("/etc/passwd")) == host_passwd


@needs_root
def test_install_again_is_idempotent_and_keeps_the_configuration(target: Path):
    assert _run(INSTALL, "--root", target, "--skip-venv").returncode == 0
    conf = target / "etc/laserd/laserd.toml"
    conf.write_text("[server]\nport = 9999\n")
    passwd_before = (target / "etc/passwd").read_text()
    group_before = (target / "etc/group").read_text()

    again = _run(INSTALL, "--root", target, "--skip-venv")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "keeping existing /etc/laserd/laserd.toml" in again.stdout
    assert conf.read_text() == "[server]\nport = 9999\n"
    assert (target / "etc/passwd").read_text() == passwd_before
    assert (target / "etc/group").read_text() == group_before


@needs_root
def test_destdir_is_the_same_as_root(target: Path):
    result = _run(INSTALL, "--skip-venv", env={"DESTDIR": str(target)})
    assert result.returncode == 0, result.stderr
    assert (target / "etc/systemd/system/laserd.service").is_file()


@needs_root
def test_uninstall_keeps_data_unless_purged(target: Path):
    assert _run(INSTALL, "--root", target, "--skip-venv").returncode == 0
    (target / "opt/laserd/venv").mkdir(parents=True)
    db = target / "var/lib/laserd/laserd.db"
    db.write_bytes(b"data")

    result = _run(UNINSTALL, "--root", target)
    assert result.returncode == 0, result.stderr
    assert not (target / "etc/systemd/system/laserd.service").exists()
    assert not (target / "etc/systemd/system/multi-user.target.wants/laserd.service").exists()
    assert not (target / "opt/laserd").exists()
    assert db.read_bytes() == b"data"
    assert (target / "etc/laserd/laserd.toml").exists()
    assert _entry(target / "etc/passwd", "laserd") is not None

    result = _run(UNINSTALL, "--root", target, "--purge")
    assert result.returncode == 0, result.stderr
    assert not (target / "var/lib/laserd").exists()
    assert not (target / "etc/laserd").exists()
    assert _entry(target / "etc/passwd", "laserd") is None


def test_uninstall_dry_run_changes_nothing(target: Path):
    (target / "var/lib/laserd").mkdir(parents=True)
    result = _run(UNINSTALL, "--root", target, "--purge", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "+ rm -rf" in result.stdout
    assert (target / "var/lib/laserd").is_dir()


def test_systemctl_is_available_for_enable():
    assert shutil.which("systemctl"), "systemctl missing: apt-get install -y systemd"


@needs_root
def test_install_reuses_a_leftover_laserd_group(target: Path):
    with (target / "etc/group").open("a") as fh:
        fh.write("laserd:x:990:\n")
    with (target / "etc/gshadow").open("a") as fh:
        fh.write("laserd:!::\n")
    result = _run(INSTALL, "--root", target, "--skip-venv")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _entry(target / "etc/passwd", "laserd")[3] == "990"
