"""The generic limiters, on the monotonic clock: a sliding window and a lockout, per key.

They know nothing of accounts or addresses: the auth layer's policy (which attempts are
counted, per what key, with which settings) is :mod:`laserd.auth.attempt_limits`, and the
setup code's attempts use a :class:`SlidingWindow` directly. The monotonic clock means a
wall-clock jump (NTP on a Pi that booted without network) neither unlocks nor extends a limit.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from laserd.errors import RateLimited


@dataclass
class SlidingWindow:
    """At most ``limit`` events per ``window_s`` for each key (a sliding log of event times)."""

    limit: int
    window_s: float
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 10_000
    _events: dict[str, deque[float]] = field(default_factory=dict)

    def _trim(self, key: str, now: float) -> deque[float]:
        q = self._events.get(key)
        if q is None:
            return deque()
        cutoff = now - self.window_s
        while q and q[0] <= cutoff:
            q.popleft()
        if not q:
            del self._events[key]
        return q

    def count(self, key: str) -> int:
        return len(self._trim(key, self.clock()))

    def retry_after(self, key: str) -> float:
        """Seconds until one more event is allowed (0 when allowed now)."""
        now = self.clock()
        q = self._trim(key, now)
        if len(q) < self.limit:
            return 0.0
        return max(0.0, q[len(q) - self.limit] + self.window_s - now)

    def blocked(self, key: str) -> bool:
        return self.retry_after(key) > 0

    def check(self, key: str) -> None:
        """Raise :class:`RateLimited` (429 with ``Retry-After``) when the key is over its limit."""
        wait = self.retry_after(key)
        if wait > 0:
            raise RateLimited(wait)

    def record(self, key: str) -> None:
        now = self.clock()
        q = self._trim(key, now)
        if not q:
            if len(self._events) >= self.max_keys:
                self._evict(now)
            q = self._events.setdefault(key, deque())
        q.append(now)

    def hit(self, key: str) -> None:
        """Check, then record: for limits on every attempt rather than only on failures."""
        self.check(key)
        self.record(key)

    def reset(self, key: str) -> None:
        self._events.pop(key, None)

    def _evict(self, now: float) -> None:
        for key in list(self._events):
            self._trim(key, now)
        while len(self._events) >= self.max_keys:
            self._events.pop(next(iter(self._events)))

    def reconfigure(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s


@dataclass
class Lockout:
    """Locks a key for ``lock_s`` after ``max_failures`` failures within ``lock_s``."""

    max_failures: int
    lock_s: float
    clock: Callable[[], float] = time.monotonic
    #: Failures are also counted for names that do not exist (the answer must not differ),
    #: so the table is bounded: past this many keys the stale ones are dropped.
    max_keys: int = 10_000
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)

    def locked_for(self, key: str) -> float:
        until = self._locked_until.get(key)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            del self._locked_until[key]
            return 0.0
        return left

    def fail(self, key: str) -> bool:
        """Record a failure; True when this failure locked the key."""
        now = self.clock()
        if key not in self._failures and len(self._failures) >= self.max_keys:
            self._evict(now)
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.lock_s:
            q.popleft()
        q.append(now)
        if len(q) >= self.max_failures:
            self._locked_until[key] = now + self.lock_s
            q.clear()
            return True
        return False

    def _evict(self, now: float) -> None:
        """Drop expired failures and locks; if still full, the oldest entries go first."""
        cutoff = now - self.lock_s
        for k in [k for k, q in self._failures.items() if not q or q[-1] <= cutoff]:
            del self._failures[k]
        for k in [k for k, until in self._locked_until.items() if until <= now]:
            del self._locked_until[k]
        while len(self._failures) >= self.max_keys:
            self._failures.pop(next(iter(self._failures)))

    def lock(self, key: str) -> None:
        """Lock the key now, whatever its failure count (a stricter rule decided it)."""
        self._failures.pop(key, None)
        if key not in self._locked_until and len(self._locked_until) >= self.max_keys:
            self._evict(self.clock())
        self._locked_until[key] = self.clock() + self.lock_s

    def succeed(self, key: str) -> None:
        self._failures.pop(key, None)

    def unlock_matching(self, key: str, prefix: str) -> bool:
        """Unlock ``key`` and every key starting with ``prefix``; True when one was locked."""
        was_locked = False
        for k in [k for k in self._locked_until if k == key or k.startswith(prefix)]:
            was_locked = was_locked or self.locked_for(k) > 0
            self._locked_until.pop(k, None)
        for k in [k for k in self._failures if k == key or k.startswith(prefix)]:
            del self._failures[k]
        return was_locked

    def unlock(self, key: str) -> None:
        self._failures.pop(key, None)
        self._locked_until.pop(key, None)
