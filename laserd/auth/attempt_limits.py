"""The auth layer's limits on attempts, built from ``[auth]`` settings, reconfigurable on reload.

The policy (what is counted, per which key, and what happens past the limit) over the generic
limiters of :mod:`laserd.limiters`:

- ``login_ip``: failed logins per client address in a sliding window → 429 with Retry-After.
- ``account``: failed logins per (account, address) pair → that pair locks for a while (423);
  an admin can unlock it. Unknown names are counted the same way as real accounts, so the
  lock itself does not reveal which usernames exist.
- ``account_slow``: failed logins per account from all addresses, a much larger budget over a
  longer window. Past it the account is *under attack*: a single wrong password locks the
  address that sent it, but an address that is not locked still has its password checked, so
  the owner (and always an admin) signs in from a fresh address with the right password.

Why pairs and not the account (see :class:`RateLimits`): a lock on the account alone let
anyone on the LAN lock any account, the admin's included, every ``account_lock_s``.
- ``setup``: wrong setup codes per address → 429.
- ``mail_ip`` / ``register_ip``: requests that send mail or create accounts, per address. They
  have no settings of their own: they stop floods, not people.
- ``mail_account``: reset/verification mails per account per hour; past it the request still
  answers 202 (no enumeration) but no further mail goes out.
"""

from __future__ import annotations

from dataclasses import dataclass

from laserd.limiters import Lockout, SlidingWindow
from laserd.settings import Settings

SETUP_WINDOW_S = 900.0
MAIL_IP_LIMIT, MAIL_IP_WINDOW_S = 10, 900.0
MAIL_ACCOUNT_LIMIT, MAIL_ACCOUNT_WINDOW_S = 3, 3600.0
REGISTER_IP_LIMIT, REGISTER_IP_WINDOW_S = 10, 3600.0


def account_key(user_id: int | None, login_name: str) -> str:
    """The lockout key: the account when it exists, else the name as typed (case-folded)."""
    return f"user:{user_id}" if user_id is not None else f"name:{login_name.casefold()}"


def pair_key(account: str, client_ip: str) -> str:
    """The key of one (account, client address) pair in ``RateLimits.account``."""
    return f"{account}|{client_ip}"


@dataclass(frozen=True, slots=True)
class LoginFailure:
    """What one failed password did: ``locked`` this address out of the account; put the
    account ``under_attack`` (its slow per-account budget ran out with this failure)."""

    locked: bool
    under_attack: bool


class RateLimits:
    """The limits; the login rules follow NIST SP 800-63B §5.2.2 and django-axes.

    NIST SP 800-63B §5.2.2 (rate limiting) asks a verifier to allow no more than 100
    consecutive failed attempts on one account, and to prefer measures that keep an attacker
    from locking the legitimate subscriber out. django-axes, the common Django brute-force
    guard, offers the lock on the combination of username and client address
    (``AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]``) for exactly that reason.
    laserd does both:

    - a pair lock: ``account_max_failures`` wrong passwords from one address for one account
      lock that address out of that account for ``account_lock_s`` (423). An attacker locks
      only itself; the owner, and any admin, still sign in from their own address;
    - a slow per-account budget: ``account_slow_max_failures`` wrong passwords per
      ``account_slow_window_s`` from all addresses together (default 100 a day, NIST's
      bound). Past it each address gets one wrong try per ``account_lock_s`` instead of
      ``account_max_failures``, so a guesser spread over many addresses is slowed to one
      guess per address per lock period, while a right password from an address that is not
      locked still signs in;
    - ``login_ip``: failures per address over all accounts (429), as before.

    An admin's unlock lifts every pair lock of the account and its slow budget.
    """

    def __init__(self, settings: Settings) -> None:
        auth = settings.auth
        self.login_ip = SlidingWindow(auth.login_ip_max_failures, auth.login_ip_window_s)
        self.account = Lockout(auth.account_max_failures, auth.account_lock_s)
        self.account_slow = SlidingWindow(
            auth.account_slow_max_failures, auth.account_slow_window_s
        )
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
        self.account_slow.reconfigure(auth.account_slow_max_failures, auth.account_slow_window_s)
        self.setup.reconfigure(auth.setup_max_attempts, SETUP_WINDOW_S)

    # ------------------------------------------------------------------ password checks

    def locked_for(self, account: str, client_ip: str) -> float:
        """Seconds this address stays locked out of this account (0: it may try)."""
        return self.account.locked_for(pair_key(account, client_ip))

    def under_attack(self, account: str) -> bool:
        return self.account_slow.blocked(account)

    def password_failed(self, account: str, client_ip: str) -> LoginFailure:
        """Record one wrong password for ``account`` from ``client_ip``."""
        already = self.under_attack(account)
        self.account_slow.record(account)
        key = pair_key(account, client_ip)
        if already:
            self.account.lock(key)
            return LoginFailure(locked=True, under_attack=False)
        locked = self.account.fail(key)
        return LoginFailure(locked=locked, under_attack=self.under_attack(account))

    def password_passed(self, account: str, client_ip: str) -> None:
        """A right password clears this pair's failures (not the account's slow budget: an
        attack spread over other addresses goes on whether or not the owner signs in)."""
        self.account.succeed(pair_key(account, client_ip))

    def unlock_user(self, user_id: int) -> bool:
        """Lift every lock on the account and its slow budget (admin action, or a completed
        password reset); True when some address was locked out of it."""
        key = account_key(user_id, "")
        self.account_slow.reset(key)
        return self.account.unlock_matching(key, pair_key(key, ""))
