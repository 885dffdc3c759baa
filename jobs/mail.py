"""Mail jobs: deliver one message through the configured backend, at most once."""
from __future__ import annotations

import redis
from flask import current_app

from backend.common.jobs import redis_client
from backend.common.mail import Mail, mail_backend
from backend.extensions import db

_SENT_TTL_S = 7 * 24 * 3600


def send_email(*, to: str, subject: str, text: str, message_id: str) -> bool:
    """Send the message unless this Message-ID was already sent; False when skipped."""
    marker = f"groundwork:mail:sent:{message_id}"
    client: redis.Redis = redis_client()
    if not client.set(marker, "1", nx=True, ex=_SENT_TTL_S):
        return False  # a retried or duplicated job: the mail already went out
    try:
        mail_backend(current_app.config, db.session).send(Mail(to=to, subject=subject, text=text,
                                                                message_id=message_id))
    except Exception:
        client.delete(marker)  # not sent: let RQ's retry try again
        raise
    return True
