"""Outgoing mail: SMTP when ``[mail] smtp_host`` is set, else the log; always the outbox table.

Delivery runs in the background (smtplib in an executor, since it blocks), so a request that
triggers mail answers at once and in the same time whether or not a message was sent (a
password-reset request must not reveal by its timing that the address exists).

Without SMTP the message, reset link included, is written to the log at WARNING with a clear
"mail not configured" note: on an appliance with no mail server that is the only way for the
owner to get the link. Configure ``[mail]`` to keep tokens out of the journal.

The outbox row never holds a message's secrets (reset and verification tokens): the caller
names them and they are replaced by :data:`REDACTED` before the row is written, so the
database and every backup of it hold only the tokens' hashes (in ``user_tokens``). The whole
message lives in memory until it is delivered. What a resend needs is in the row (address,
kind, subject); a resend is a new request, which issues a new token. In debug mode (the
black-box tests read links from ``GET /debug/outbox``) the last :data:`DEBUG_KEEP` whole
messages are also kept in memory, never on disk, and that route shows them.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from collections import OrderedDict
from collections.abc import Sequence
from email.message import EmailMessage

import aiosqlite

from laserd.logs import Multiline
from laserd.settings import MailSettings
from laserd.store import outbox

log = logging.getLogger(__name__)

#: What the outbox row holds where the message carried a secret.
REDACTED = "[token not stored: only its hash is kept; ask for a new link to resend]"
#: Whole messages kept in memory in debug mode, for ``GET /debug/outbox``.
DEBUG_KEEP = 500


def redact(body: str, secrets: Sequence[str]) -> str:
    """``body`` with every occurrence of each secret replaced by :data:`REDACTED`."""
    for secret in secrets:
        if secret:
            body = body.replace(secret, REDACTED)
    return body


class Mailer:
    def __init__(
        self, conn: aiosqlite.Connection, settings: MailSettings, *, debug: bool = False
    ) -> None:
        self._conn = conn
        self.settings = settings
        self._tasks: set[asyncio.Task[None]] = set()
        #: Debug mode only: outbox id → the whole body as sent (bounded, memory only).
        self._debug_bodies: OrderedDict[int, str] | None = OrderedDict() if debug else None

    def reload(self, settings: MailSettings) -> None:
        self.settings = settings

    @property
    def transport(self) -> str:
        return "smtp" if self.settings.smtp_host else "log"

    async def send(
        self, to_addr: str, subject: str, body: str, *, kind: str, secrets: Sequence[str] = ()
    ) -> int:
        """Record the message in the outbox (``secrets`` redacted) and deliver it whole in the
        background; its outbox id."""
        transport = self.transport
        message_id = await outbox.insert(
            self._conn,
            to_addr=to_addr,
            subject=subject,
            body=redact(body, secrets),
            kind=kind,
            transport=transport,
        )
        if self._debug_bodies is not None:
            self._debug_bodies[message_id] = body
            while len(self._debug_bodies) > DEBUG_KEEP:
                self._debug_bodies.popitem(last=False)
        if transport == "log":
            log.warning(
                "mail not configured ([mail] smtp_host is empty): message %d to %s, %r:\n%s",
                message_id,
                to_addr,
                subject,
                Multiline(body),  # composed here from validated fields: keep its lines
            )
            await outbox.mark(self._conn, message_id, error=None)
            return message_id
        task = asyncio.create_task(self._deliver(message_id, to_addr, subject, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return message_id

    async def _deliver(self, message_id: int, to_addr: str, subject: str, body: str) -> None:
        msg = EmailMessage()
        msg["From"] = self.settings.sender
        msg["To"] = to_addr
        msg["Subject"] = subject
        msg.set_content(body)
        loop = asyncio.get_running_loop()
        error: str | None = None
        try:
            await loop.run_in_executor(None, self._smtp_send, self.settings, msg)
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.error("mail %d to %s not delivered: %s", message_id, to_addr, error)
        else:
            log.info("mail %d sent to %s", message_id, to_addr)
        await outbox.mark(self._conn, message_id, error=error)

    def debug_body(self, message_id: int) -> str | None:
        """The whole body of a recent message, in debug mode only (else None)."""
        if self._debug_bodies is None:
            return None
        return self._debug_bodies.get(message_id)

    @staticmethod
    def _smtp_send(settings: MailSettings, msg: EmailMessage) -> None:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_s) as s:
            if settings.starttls:
                s.starttls(context=ssl.create_default_context())
            if settings.username:
                s.login(settings.username, settings.password.get_secret_value())
            s.send_message(msg)

    async def close(self) -> None:
        """Let messages in flight finish (bounded by the SMTP timeout), then stop."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.settings.timeout_s + 1)
        for task in list(self._tasks):
            task.cancel()
