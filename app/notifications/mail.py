"""Send queued e-mail through SMTP or into an outbox folder, with retries.

A queued message is claimed (state "sending") in one transaction, handed to
the backend outside any transaction, then marked "sent" in another. While the
SMTP server is unreachable, messages go back to "pending" with a growing
delay and are sent when it answers again. A message is handed to the server
again only if the process died between the server's acceptance and the
"sent" mark. The claim then expires after CLAIM_SECONDS, and the copy carries
the same Message-ID header so that mail clients can drop it.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import or_, select, update

from app.attachments.storage import StorageError
from app.core.db import run_in_write_transaction
from app.core.types import utcnow
from app.extensions import db
from app.notifications.models import EmailMessage

log = logging.getLogger(__name__)

# Seconds a runner may hold a claimed message before another may take it over.
CLAIM_SECONDS = 600
# After this many failed attempts a message is marked failed and shown to administrators.
MAX_ATTEMPTS = 48
# Delay before a retry: 1 minute, doubled after each failure, at most one hour.
FIRST_RETRY_SECONDS = 60
MAX_RETRY_SECONDS = 3600


class DeliveryError(Exception):
    """Sending failed; ``permanent`` is True when retrying cannot help (address rejected)."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class Connection(Protocol):
    def send(self, mime: MimeMessage) -> None: ...

    def close(self) -> None: ...


class FolderBackend:
    """Write each message as ``<Message-ID>.eml`` in a folder; writing it again replaces the same file."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def open(self) -> FolderBackend:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self

    def send(self, mime: MimeMessage) -> None:
        name = re.sub(r"[^A-Za-z0-9.@_-]", "_", str(mime["Message-ID"]).strip("<>")) + ".eml"
        with tempfile.NamedTemporaryFile("wb", dir=self.directory, delete=False, suffix=".tmp") as handle:
            handle.write(mime.as_bytes())
        os.replace(handle.name, self.directory / name)

    def close(self) -> None:
        pass


class SmtpBackend:
    """Send through an SMTP server, one connection per delivery pass."""

    def __init__(self, host: str, port: int, security: str, username: str, password: str, timeout: float):
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self._client: smtplib.SMTP | None = None

    def open(self) -> SmtpBackend:
        try:
            if self.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
            if self.username:
                client.login(self.username, self.password)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP server {self.host}:{self.port} unreachable: {exc}") from exc
        self._client = client
        return self

    def send(self, mime: MimeMessage) -> None:
        assert self._client is not None, "open() the backend first"
        try:
            self._client.send_message(mime)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _message in exc.recipients.values()]
            raise DeliveryError(f"recipient refused: {exc.recipients}", permanent=all(c >= 500 for c in codes)) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP error {exc.smtp_code}: {exc.smtp_error!r}", permanent=exc.smtp_code >= 500) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._client = None
            raise DeliveryError(f"SMTP connection to {self.host}:{self.port} lost: {exc}") from exc

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except (OSError, smtplib.SMTPException):
                log.debug("SMTP QUIT failed; the connection is dropped")
            self._client = None


def backend_from_config(config: dict[str, Any]) -> FolderBackend | SmtpBackend:
    if config["MAIL_BACKEND"] == "smtp":
        return SmtpBackend(
            config["SMTP_HOST"], int(config["SMTP_PORT"]), config["SMTP_SECURITY"],
            config["SMTP_USERNAME"], config["SMTP_PASSWORD"], float(config["SMTP_TIMEOUT_SECONDS"]),
        )
    return FolderBackend(config["MAIL_OUTBOX_DIR"])


def build_mime(message: EmailMessage, sender: str) -> MimeMessage:
    """Build the MIME message: a plain-text part and an HTML alternative."""
    mime = MimeMessage()
    mime["From"] = sender
    mime["To"] = message.to_address
    if message.reply_to:
        mime["Reply-To"] = message.reply_to
    mime["Subject"] = message.subject
    mime["Message-ID"] = message.message_id
    mime["Date"] = format_datetime(message.created_at)
    mime["Content-Language"] = message.language
    mime["Auto-Submitted"] = "auto-generated"
    mime.set_content(message.body_text)
    mime.add_alternative(message.body_html, subtype="html")
    if message.attachments:
        _attach_files(mime, message)
    return mime


def _attach_files(mime: MimeMessage, message: EmailMessage) -> None:
    from app.attachments.operations import content_store

    store = content_store()
    for attachment in message.attachments:
        try:
            with store.open_verified(attachment.sha256) as handle:
                data = handle.read()
        except StorageError as error:
            # A missing or corrupt file may come back from a backup: retry like a network failure.
            raise DeliveryError(f"attachment {attachment.file_name!r} unreadable: {error}") from error
        maintype, _slash, subtype = attachment.content_type.partition("/")
        mime.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream", filename=attachment.file_name)


@dataclass
class DeliverySummary:
    sent: int = 0
    retried: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "retried": self.retried, "failed": self.failed}


def _due_ids(now: datetime, limit: int) -> list[int]:
    rows = db.session.execute(
        select(EmailMessage.id)
        .where(
            EmailMessage.state.in_(("pending", "sending")),
            EmailMessage.next_attempt_at <= now,
        )
        .order_by(EmailMessage.next_attempt_at, EmailMessage.id)
        .limit(limit)
    ).scalars()
    return list(rows)


def _claim(message_id: int, now: datetime) -> bool:
    claimable = or_(
        EmailMessage.state == "pending",
        (EmailMessage.state == "sending") & (EmailMessage.claimed_until < now),
    )
    result = db.session.execute(
        update(EmailMessage)
        .where(EmailMessage.id == message_id, EmailMessage.next_attempt_at <= now, claimable)
        .values(state="sending", claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
    )
    return result.rowcount == 1


def _mark_sent(message_id: int, now: datetime) -> None:
    db.session.execute(
        update(EmailMessage)
        .where(EmailMessage.id == message_id)
        .values(state="sent", sent_at=now, claimed_until=None, attempts=EmailMessage.attempts + 1, last_error=None)
    )


def _mark_failed_attempt(message_id: int, now: datetime, error: DeliveryError) -> str:
    message = db.session.get(EmailMessage, message_id)
    assert message is not None
    message.attempts += 1
    message.last_error = str(error)[:2000]
    message.claimed_until = None
    if error.permanent or message.attempts >= MAX_ATTEMPTS:
        message.state = "failed"
    else:
        message.state = "pending"
        delay = min(FIRST_RETRY_SECONDS * 2 ** (message.attempts - 1), MAX_RETRY_SECONDS)
        message.next_attempt_at = now + timedelta(seconds=delay)
    return message.state


def deliver_pending(now: datetime | None = None, limit: int = 200, backend: Any = None) -> DeliverySummary:
    """Send the queued messages whose time has come; return how many were sent, retried and failed.

    When the server cannot be reached, every due message of this pass stays
    pending with its retry delay, and the pass stops.
    """
    now = now or utcnow()
    config = current_app.config
    backend = backend or backend_from_config(config)
    summary = DeliverySummary()
    ids = _due_ids(now, limit)
    if not ids:
        return summary

    try:
        connection = backend.open()
    except DeliveryError as unreachable:
        log.warning("e-mail delivery postponed for %s messages: %s", len(ids), unreachable)
        _postpone(ids, now, unreachable, summary)
        return summary

    try:
        for message_id in ids:
            _deliver_one(connection, message_id, now, config["MAIL_SENDER"], summary)
    finally:
        connection.close()
    if summary.sent or summary.retried or summary.failed:
        log.info("e-mail delivery: %s sent, %s to retry, %s failed", summary.sent, summary.retried, summary.failed)
    return summary


def _postpone(ids: list[int], now: datetime, error: DeliveryError, summary: DeliverySummary) -> None:
    for message_id in ids:
        if run_in_write_transaction(partial(_claim, message_id, now), f"claim e-mail {message_id}"):
            run_in_write_transaction(partial(_mark_failed_attempt, message_id, now, error), f"retry e-mail {message_id}")
            summary.retried += 1


def _deliver_one(connection: Connection, message_id: int, now: datetime, sender: str, summary: DeliverySummary) -> None:
    if not run_in_write_transaction(partial(_claim, message_id, now), f"claim e-mail {message_id}"):
        return
    message = db.session.get(EmailMessage, message_id)
    assert message is not None
    try:
        mime = build_mime(message, sender)
        db.session.commit()
        connection.send(mime)
    except DeliveryError as error:
        state = run_in_write_transaction(
            partial(_mark_failed_attempt, message_id, now, error), f"retry e-mail {message_id}"
        )
        if state == "failed":
            summary.failed += 1
            log.error("e-mail %s to %s failed for good: %s", message_id, message.to_address, error)
        else:
            summary.retried += 1
            log.warning("e-mail %s to %s will be retried: %s", message_id, message.to_address, error)
        return
    run_in_write_transaction(partial(_mark_sent, message_id, now), f"mark e-mail {message_id} sent")
    summary.sent += 1
