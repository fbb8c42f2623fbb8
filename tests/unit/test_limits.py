"""Rate-limit primitives on an injected monotonic clock, and the auth layer's holder."""

from __future__ import annotations

from pathlib import Path

import pytest

from laserd.auth.attempt_limits import RateLimits, account_key
from laserd.errors import RateLimited
from laserd.limiters import Lockout, SlidingWindow
from tests.conftest import make_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_limits_and_recovers() -> None:
    clock = Clock()
    w = SlidingWindow(limit=3, window_s=60, clock=clock)
    for _ in range(3):
        w.check("a")
        w.record("a")
        clock.now += 1
    with pytest.raises(RateLimited) as info:
        w.check("a")
    assert info.value.headers["Retry-After"] == "57"  # the oldest leaves at 1060; now 1003
    w.check("b")  # other keys are independent
    clock.now = 1060.5
    w.check("a")  # the oldest event slid out
    assert w.count("a") == 2


def test_sliding_window_hit_counts_every_attempt() -> None:
    clock = Clock()
    w = SlidingWindow(limit=2, window_s=10, clock=clock)
    w.hit("k")
    w.hit("k")
    with pytest.raises(RateLimited):
        w.hit("k")


def test_sliding_window_bounds_its_memory() -> None:
    clock = Clock()
    w = SlidingWindow(limit=1, window_s=10, clock=clock, max_keys=50)
    for i in range(500):
        w.record(f"addr{i}")
    assert len(w._events) <= 50


def test_lockout_locks_then_expires_and_unlocks() -> None:
    clock = Clock()
    lock = Lockout(max_failures=3, lock_s=100, clock=clock)
    assert not lock.fail("u") and not lock.fail("u")
    assert lock.fail("u")  # the third failure locks
    assert lock.locked_for("u") == pytest.approx(100)
    clock.now += 40
    assert lock.locked_for("u") == pytest.approx(60)
    lock.unlock("u")
    assert lock.locked_for("u") == 0
    assert lock.fail("u") is False  # counting starts over after an unlock
    assert lock.fail("u") is False
    assert lock.fail("u") is True
    clock.now += 101
    assert lock.locked_for("u") == 0


def test_lockout_forgets_old_failures_and_successes() -> None:
    clock = Clock()
    lock = Lockout(max_failures=2, lock_s=10, clock=clock)
    lock.fail("u")
    clock.now += 11
    assert lock.fail("u") is False  # the first failure is older than the window
    lock.succeed("u")
    assert lock.fail("u") is False


def test_account_key_is_the_user_when_known_else_the_folded_name() -> None:
    assert account_key(7, "Whoever") == "user:7"
    assert account_key(None, "Ghost") == account_key(None, "GHOST") == "name:ghost"


def test_rate_limits_follow_settings_and_reload(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth={"login_ip_max_failures": 4, "account_max_failures": 2})
    limits = RateLimits(settings)
    assert limits.login_ip.limit == 4 and limits.account.max_failures == 2
    limits.login_ip.record("10.0.0.1")
    newer = make_settings(
        tmp_path,
        auth={
            "login_ip_max_failures": 1,
            "login_ip_window_s": 30,
            "account_max_failures": 9,
            "account_lock_s": 5,
            "setup_max_attempts": 2,
        },
    )
    limits.reload(newer)
    assert (limits.login_ip.limit, limits.login_ip.window_s) == (1, 30)
    assert (limits.account.max_failures, limits.account.lock_s) == (9, 5)
    assert limits.setup.limit == 2
    assert limits.login_ip.blocked("10.0.0.1")  # counts survive a reload


def test_unlock_user_reports_whether_it_was_locked(tmp_path: Path) -> None:
    limits = RateLimits(make_settings(tmp_path, auth={"account_max_failures": 1}))
    assert limits.unlock_user(3) is False
    limits.account.fail(account_key(3, ""))
    assert limits.unlock_user(3) is True
    assert limits.account.locked_for(account_key(3, "")) == 0


def test_lockout_table_is_bounded() -> None:
    from laserd.limiters import Lockout

    now = [0.0]
    lock = Lockout(max_failures=3, lock_s=60, clock=lambda: now[0], max_keys=100)
    for i in range(1000):
        lock.fail(f"nobody-{i}")
    assert len(lock._failures) <= 100
    # a key under attack still locks
    for _ in range(3):
        lock.fail("victim")
    assert lock.locked_for("victim") > 0


def test_pair_locks_and_unlock_user_touch_only_that_account(tmp_path: Path) -> None:
    limits = RateLimits(
        make_settings(tmp_path, auth={"account_max_failures": 2, "account_slow_max_failures": 3})
    )
    three, thirty = account_key(3, ""), account_key(30, "")
    for key in (three, thirty):
        for _ in range(2):
            limits.password_failed(key, "10.0.0.9")
    assert limits.locked_for(three, "10.0.0.9") > 0 and limits.locked_for(thirty, "10.0.0.9") > 0
    assert limits.locked_for(three, "10.0.0.10") == 0  # another address is not locked
    failure = limits.password_failed(three, "10.0.0.10")  # the third failure on account 3
    assert failure.under_attack and not failure.locked
    assert limits.password_failed(three, "10.0.0.11").locked  # one try per address now
    assert limits.unlock_user(3) is True
    assert limits.locked_for(three, "10.0.0.9") == limits.locked_for(three, "10.0.0.11") == 0
    assert not limits.under_attack(three)
    assert limits.locked_for(thirty, "10.0.0.9") > 0  # user:30 is not user:3
