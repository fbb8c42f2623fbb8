"""The auth layer's rate limits, built from ``[auth]`` settings and reconfigurable on reload.

- ``login_ip``: failed logins per client address in a sliding window → 429 with Retry-After.
- ``account``: failed logins per account → the account locks for a while (423); an admin can
  unlock it. Unknown names are counted the same way as real accounts, so the lock itself does
  not reveal which usernames exist.
- ``setup``: wrong setup codes per address → 429.
- ``mail_ip`` / ``register_ip``: requests that send mail or create accounts, per address. They
  have no settings of their own: they stop floods, not people.
- ``mail_account``: reset/verification mails per account per hour; past it the request still
  answers 202 (no enumeration) but no further mail goes out.
"""

from __future__ import annotations

from laserd.ratelimit import Lockout, SlidingWindow
from laserd.settings import Settings

SETUP_WINDOW_S = 900.0
MAIL_IP_LIMIT, MAIL_IP_WINDOW_S = 10, 900.0
MAIL_ACCOUNT_LIMIT, MAIL_ACCOUNT_WINDOW_S = 3, 3600.0
REGISTER_IP_LIMIT, REGISTER_IP_WINDOW_S = 10, 3600.0


def account_key(user_id: int | None, login_name: str) -> str:
    """The lockout key: the account when it exists, else the name as typed (case-folded)."""
    return f"user:{user_id}" if user_id is not None else f"name:{login_name.casefold()}"


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        auth = settings.auth
        self.login_ip = SlidingWindow(auth.login_ip_max_failures, auth.login_ip_window_s)
        self.account = Lockout(auth.account_max_failures, auth.account_lock_s)
        self.setup = SlidingWindow(auth.setup_max_attempts, SETUP_WINDOW_S)
        self.mail_ip = SlidingWindow(MAIL_IP_LIMIT, MAIL_IP_WINDOW_S)
        self.mail_account = SlidingWindow(MAIL_ACCOUNT_LIMIT, MAIL_ACCOUNT_WINDOW_S)
        self.register_ip = SlidingWindow(REGISTER_IP_LIMIT, REGISTER_IP_WINDOW_S)

    def reload(self, settings: Settings) -> None:
        """Apply new limits (SIGHUP); counts already recorded are kept."""
        auth = settings.auth
        self.login_ip.reconfigure(auth.login_ip_max_failures, auth.login_ip_window_s)
        self.account.max_failures = auth.account_max_failures
        self.account.lock_s = auth.account_lock_s
        self.setup.reconfigure(auth.setup_max_attempts, SETUP_WINDOW_S)

    def unlock_user(self, user_id: int) -> bool:
        """Lift an account lock (admin action); True when it was locked."""
        key = account_key(user_id, "")
        was_locked = self.account.locked_for(key) > 0
        self.account.unlock(key)
        return was_locked
