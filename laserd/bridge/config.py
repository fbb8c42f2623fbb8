"""Settings of laserd on the LAN: ``[discovery]`` (mDNS) and ``[bridge]`` (GRBL over TCP).

Sections of :class:`laserd.settings.Settings`, kept beside the code they configure; like
every section they forbid unknown keys.
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, coerce_numbers_to_str=True
    )


class DiscoverySettings(_Section):
    enabled: bool = Field(True, description="announce laserd on the LAN by mDNS/DNS-SD")
    name: str = Field(
        "laserd",
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]*$",
        description="service name; the host is announced as <name>.local",
    )
    interfaces: list[str] = Field(
        default_factory=list,
        description="addresses to announce on (empty: every interface)",
    )
    address_poll_s: float = Field(
        5, gt=0, le=3600, description="how often the host's addresses are checked for changes"
    )

    @field_validator("interfaces")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_address(item)  # ValueError names the bad address
        return value


class BridgeSettings(_Section):
    enabled: bool = Field(False, description="the GRBL-over-TCP bridge for desktop senders")
    port: int = Field(
        23, ge=0, le=65535, description="TCP port (LightBurn: GRBL, TCP/IP); 0: any free port"
    )
    allow: list[str] = Field(
        default_factory=lambda: ["192.168.1.0/24"],
        description="client networks allowed to connect; every other address is closed at once",
    )
    idle_timeout_s: float = Field(
        300, gt=0, description="a session with no line for this long, machine idle, ends"
    )
    client_timeout_s: float = Field(
        10, ge=2, le=3600, description="a client silent at the TCP level this long has vanished"
    )
    keep_streaming: bool = Field(
        False,
        description="a vanished client's lines already received still run (else: hold, stop)",
    )
    pending_timeout_s: float = Field(
        120, gt=0, description="a connection nobody accepted is closed after this long"
    )
    max_pending: int = Field(4, ge=1, le=64, description="connections waiting at once")

    @field_validator("allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError names the bad network
        return value
