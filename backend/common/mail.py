"""Outgoing email behind a small Protocol, chosen by ``MAIL_BACKEND``.

``smtp`` talks to a real SMTP server (smtplib, STARTTLS and login when configured);
``outbox`` keeps each mail in the ``mail_outbox`` table; in development it also prints
each one in the log (`make run` shows it, links included), ``flask outbox`` lists the
newest, and ``list_outbox`` pages through them for the console. Services never send
inline: ``queue_mail`` enqueues ``jobs.mail.send_email`` after the transaction commits,
and the job is idempotent by ``message_id``.
"""
from __future__ import annotations

import logging
import smtplib
import textwrap
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from backend.common.jobs import enqueue_after_commit
from backend.common.pagination import Page, paginate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mail:
    """One plain-text message to one recipient."""

    to: str
    subject: str
    text: str
    message_id: str


class MailBackend(Protocol):
    def send(self, mail: Mail) -> None:
        """Deliver ``mail`` or raise."""


class SmtpBackend:
    """Delivers through an SMTP server."""

    def __init__(self, config: dict[str, Any]):
        self.config = config

    def send(self, mail: Mail) -> None:
        c = self.config
        message = EmailMessage()
        message["From"] = c["MAIL_FROM"]
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Message-ID"] = mail.message_id
        message.set_content(mail.text)
        with smtplib.SMTP(c["SMTP_HOST"], c["SMTP_PORT"], timeout=10) as smtp:
            if c["SMTP_STARTTLS"]:
                smtp.starttls()
            if c["SMTP_USERNAME"]:
                smtp.login(c["SMTP_USERNAME"], c["SMTP_PASSWORD"])
            smtp.send_message(message)


class OutboxBackend:
    """Keeps mails in the ``mail_outbox`` table instead of sending them; ``echo`` also logs each one."""

    def __init__(self, session: Any, *, echo: bool = False):
        self.session, self.echo = session, echo

    def send(self, mail: Mail) -> None:
        from backend.auth.models import OutboxMail

        stored = self.session.execute(insert(OutboxMail).values(
            id=uuid.uuid4(), message_id=mail.message_id, recipient=mail.to, subject=mail.subject, body_text=mail.text,
        ).on_conflict_do_nothing(index_elements=["message_id"]).returning(OutboxMail.id)).first()
        self.session.commit()
        if self.echo and stored is not None:
            # A developer reads the mail (and opens its link) from `make run`'s output.
            log.info("mail to %s: %s\n%s", mail.to, mail.subject, textwrap.indent(mail.text, "    | "))


def mail_backend(config: dict[str, Any], session: Any) -> MailBackend:
    """The backend ``MAIL_BACKEND`` names."""
    if config["MAIL_BACKEND"] == "smtp":
        return SmtpBackend(config)
    if config["MAIL_BACKEND"] == "outbox":
        return OutboxBackend(session, echo=config["ENV"] == "development")
    raise ValueError(f"unknown MAIL_BACKEND {config['MAIL_BACKEND']!r}")


def queue_mail(session: Any, *, to: str, subject: str, text: str) -> str:
    """Send a mail once ``session`` commits; returns its Message-ID."""
    message_id = make_msgid(domain="groundwork")
    enqueue_after_commit(session, "jobs.mail.send_email", queue="default", to=to, subject=subject, text=text,
                         message_id=message_id)
    return message_id


def list_outbox(session: Any, *, recipient: str | None = None, cursor: str | None = None, limit: int = 20) -> Page:
    """One page of the outbox, newest first, optionally for one recipient (the console's outbox view)."""
    from backend.auth.models import OutboxMail

    query = select(OutboxMail)
    if recipient:
        query = query.where(OutboxMail.recipient == recipient.strip().lower())
    return paginate(session, query, order=(OutboxMail.created_at, OutboxMail.id), cursor=cursor, limit=limit)
