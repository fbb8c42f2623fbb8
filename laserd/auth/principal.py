"""Who is calling: roles and the authenticated principal attached to a request."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """Least role a route needs. ``public`` means no credentials at all."""

    public = "public"
    guest = "guest"
    user = "user"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        """True when a principal of this role may call a route that needs ``needed``."""
        return self.rank >= needed.rank


_RANK = {Role.public: 0, Role.guest: 1, Role.user: 2, Role.admin: 3}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user through a login (JWT) or through an API key."""

    user_id: int
    username: str
    role: Role
    login_id: str | None = None
    api_key_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin
