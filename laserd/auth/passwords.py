"""Password hashing with bcrypt, always off the event loop and a bounded number at once.

bcrypt at cost 12 takes a quarter of a second on a desktop and about a second on a Pi: run on
the loop it would starve the G-code stream, so every hash and check goes to a small dedicated
thread pool (bcrypt releases the GIL), behind a semaphore so that a burst of logins queues in
asyncio instead of piling up threads.

The pool's threads also run at a lower CPU priority (a higher nice value, per thread on
Linux): on a two- or four-core Pi a burst of logins would otherwise compete with the event
loop for the cores, and the loop must win.

Unknown users are checked against a dummy hash of the same cost, so "no such user" and "wrong
password" take the same path and the same time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

from laserd import errors
from laserd.settings import AuthSettings

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Added to the nice value of the hashing threads (0 = normal, 19 = lowest priority).
HASHER_NICE_INCREMENT = 10

#: bcrypt reads at most this many bytes; longer passwords would be silently truncated.
BCRYPT_MAX_BYTES = 72


def check_password_bytes(password: str) -> str:
    """The length and content rules every password field shares (min length is per setting).

    Raises ``ValueError`` so that pydantic reports it on the right field.
    """
    size = len(password.encode("utf-8"))
    if size > BCRYPT_MAX_BYTES:
        raise ValueError(
            f"must be at most {BCRYPT_MAX_BYTES} bytes in UTF-8 (this one is {size} bytes)"
        )
    if "\x00" in password:
        raise ValueError("must not contain NUL characters")
    return password


def _lower_thread_priority() -> None:
    """Thread-pool initializer: on Linux, nice values apply to single threads."""
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + HASHER_NICE_INCREMENT))
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        pass


def _make_pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        workers, thread_name_prefix="bcrypt", initializer=_lower_thread_priority
    )


def _cost_of(password_hash: str) -> int | None:
    parts = password_hash.split("$")
    if len(parts) >= 4 and parts[2].isdigit():
        return int(parts[2])
    return None


class PasswordHasher:
    def __init__(self, auth: AuthSettings) -> None:
        self.rounds = auth.bcrypt_rounds
        self.min_length = auth.min_password_length
        self._concurrency = auth.bcrypt_concurrency
        self._pool = _make_pool(self._concurrency)
        self._sem = asyncio.Semaphore(self._concurrency)
        self._dummy: str | None = None

    def reload(self, auth: AuthSettings) -> None:
        """Apply new settings; a new cost takes effect for new hashes and the dummy hash."""
        if auth.bcrypt_rounds != self.rounds:
            self._dummy = None
        self.rounds = auth.bcrypt_rounds
        self.min_length = auth.min_password_length
        if auth.bcrypt_concurrency != self._concurrency:
            old = self._pool
            self._concurrency = auth.bcrypt_concurrency
            self._pool = _make_pool(self._concurrency)
            self._sem = asyncio.Semaphore(self._concurrency)
            old.shutdown(wait=False)

    def validate_new(self, password: str, field: str) -> None:
        """Rules for a password being set (422 on ``field``): the byte limit and min length."""
        try:
            check_password_bytes(password)
        except ValueError as exc:
            raise errors.ValidationFailed.field(field, str(exc)) from None
        if len(password) < self.min_length:
            raise errors.ValidationFailed.field(
                field, f"must be at least {self.min_length} characters"
            )

    async def _run(self, fn: Callable[[bytes, bytes], _T], a: bytes, b: bytes) -> _T:
        loop = asyncio.get_running_loop()
        async with self._sem:
            return await loop.run_in_executor(self._pool, fn, a, b)

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self.rounds)
        digest = await self._run(bcrypt.hashpw, password.encode("utf-8"), salt)
        assert isinstance(digest, bytes)
        return digest.decode("ascii")

    async def warm_up(self) -> None:
        """Compute the dummy hash now so the first unknown-user login is not the odd one out."""
        await self._dummy_hash()

    async def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(24))
        return self._dummy

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """True when ``password`` matches; ``None`` (no such user) runs the dummy and is False."""
        real = password_hash is not None
        target = password_hash if real else await self._dummy_hash()
        assert target is not None
        try:
            ok = await self._run(bcrypt.checkpw, password.encode("utf-8"), target.encode("ascii"))
        except ValueError:
            # An over-long password or a damaged stored hash: never a 500, never a match.
            log.warning("password check failed on a malformed input or hash")
            return False
        return bool(ok) and real

    def needs_rehash(self, password_hash: str) -> bool:
        return _cost_of(password_hash) != self.rounds

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
