"""The one-time setup code that lets the person at the machine create the first admin.

There are no default credentials. While no admin exists, laserd makes a random code at start
and prints it to its console and log (only someone with access to the device or its journal
sees it); ``POST /setup`` with the code creates the first admin, after which setup is closed
for good. Wrong codes are rate-limited per address.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets

from laserd.limiters import SlidingWindow
from laserd.origin import current_origin

#: No 0/O, 1/I/L: the code is read off a console and typed by hand.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
GROUPS, GROUP_LEN = 3, 4  # 12 symbols ≈ 59 bits; with the rate limit, far beyond guessing


def normalise(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


class SetupCode:
    def __init__(self, limit: SlidingWindow) -> None:
        #: Wrong codes per client address (``RateLimits.setup``).
        self._limit = limit
        self.code: str | None = None
        #: Serialises first-admin creation so two correct submissions cannot both succeed.
        self.lock = asyncio.Lock()

    def generate(self) -> str:
        raw = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LEN))
        self.code = "-".join(raw[i : i + GROUP_LEN] for i in range(0, len(raw), GROUP_LEN))
        return self.code

    def attempt(self, candidate: str) -> bool:
        """Whether ``candidate`` is the code. Wrong codes count against the caller's address
        (the current request's origin); past the limit every attempt is refused with 429 and
        Retry-After before the code is even compared."""
        address = current_origin().address
        self._limit.check(address)
        if self.matches(candidate):
            return True
        self._limit.record(address)
        return False

    def matches(self, candidate: str) -> bool:
        if self.code is None:
            return False
        return hmac.compare_digest(normalise(candidate).encode(), normalise(self.code).encode())

    def clear(self) -> None:
        self.code = None
