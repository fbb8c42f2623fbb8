"""Shared fixtures: real settings in a temporary state folder, the real app, a test client.

Area-specific fixtures live in each folder's own conftest.py (tests/api/conftest.py for
accounts and tokens, tests/streaming/conftest.py for the simulator, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from laserd.app import create_app
from laserd.hardware import Hardware, mock_pin_factory
from laserd.settings import Settings, load_settings
from tests.samples import SAMPLE_DATA

REPO = Path(__file__).resolve().parent.parent


def make_settings(state_dir: Path, **sections: dict[str, Any]) -> Settings:
    """Settings for tests: nothing read from the environment or a .env file."""
    overrides: dict[str, Any] = {
        "storage": {"state_dir": str(state_dir)},
        "auth": {"bcrypt_rounds": 4},
        "server": {"debug": True, "access_log": False},
        # No mDNS announcement from every test app; tests/unit/test_discovery.py turns it on.
        "discovery": {"enabled": False},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return load_settings(
        "/nonexistent/laserd.toml", env={}, dotenv=Path("/nonexistent/.env"), overrides=overrides
    )


def bare_hardware() -> Hardware:
    """Mock GPIO pins and no controller at all (for API tests that never move the machine)."""
    return Hardware(pin_factory=mock_pin_factory(), serial_port="", simulator=None)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "state")


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> Any:
    """A test client on the real app with a real SQLite file and no controller."""
    app = create_app(settings, hardware=bare_hardware())
    return await aiohttp_client(app)


@pytest.fixture
def sample_data() -> Path:
    return SAMPLE_DATA
