"""Outgoing mail: SMTP when ``[mail] smtp_host`` is set, else the log; always the outbox table.

Delivery runs in the background (smtplib in an executor, since it blocks), so a request that
triggers mail answers at once and in the same time whether or not a message was sent (a
password-reset request must not reveal by its timing that the address exists).

Without SMTP the message, reset link included, is written to the log at WARNING with a clear
"mail not configured" note: on an appliance with no mail server that is the only way for the
owner to get the link. Configure ``[mail]`` to keep tokens out of the journal.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage

import aiosqlite

from laserd.logs import Multiline
from laserd.settings import MailSettings
from laserd.store import outbox

log = logging.getLogger(__name__)


class Mailer:
    def __init__(self, conn: aiosqlite.Connection, settings: MailSettings) -> None:
        self._conn = conn
        self.settings = settings
        self._tasks: set[asyncio.Task[None]] = set()

    def reload(self, settings: MailSettings) -> None:
        self.settings = settings

    @property
    def transport(self) -> str:
        return "smtp" if self.settings.smtp_host else "log"

    async def send(self, to_addr: str, subject: str, body: str, *, kind: str) -> int:
        """Record the message in the outbox and deliver it in the background; its outbox id."""
        transport = self.transport
        message_id = await outbox.insert(
            self._conn, to_addr=to_addr, subject=subject, body=body, kind=kind, transport=transport
        )
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
