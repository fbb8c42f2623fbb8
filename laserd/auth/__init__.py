"""Accounts and authentication.

- ``principal``: roles and the authenticated caller.
- ``passwords``: bcrypt off the event loop (a small niced pool behind a semaphore), dummy hash.
- ``tokens``: JWT encode/verify (HS256 pinned, per-login keys derived from the server secret),
  API-key and single-use token generation.
- ``sessions``: sign-in, token pairs, refresh rotation with reuse detection, revocation.
- ``apikeys``: LAN-client keys (hashed, capped at the owner's role, throttled ``last_used_at``).
- ``recovery``: password reset and email verification through mailed single-use tokens.
- ``accounts``: the ``ACCOUNTS`` service: registration, first admin, profile, administration.
- ``service``: the ``AUTHENTICATOR`` (credential headers or token → principal).
- ``attempt_limits``: the ``RATE_LIMITS`` holder, the auth layer's policy on attempts (sign-in
  per address and per account, setup codes, mails, registrations) over :mod:`laserd.limiters`.
- ``mail``: the ``MAILER`` (SMTP in an executor, else the log; always the outbox).
- ``setup``: the one-time first-admin code; ``cli``: ``laserd create-admin``.

The cleanup context that builds all of the above is ``laserd.auth_ctx`` (wiring, beside the
other ``*_ctx.py``). Nothing here sees an HTTP request: where a service needs the caller's
address or request id it reads :func:`laserd.origin.current_origin`.
"""
