"""Sending one delivery: sign, POST, log the attempt, schedule the next one on failure.

Retries follow the Standard Webhooks schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h),
each with up to 10 % jitter; after the last, the delivery is failed. Any 2xx is success;
redirects are not followed. Endpoints on private networks are refused unless
WEBHOOK_ALLOW_PRIVATE_NETWORKS is set (an admin-entered URL must not reach inside).
"""
from __future__ import annotations

import ipaddress
import json
import random
import socket
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from backend.common.db import utcnow
from backend.common.jobs import enqueue_after_commit
from backend.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from backend.webhooks.services import signing_secrets
from backend.webhooks.signing import headers_for

RETRY_SCHEDULE_S = (5, 300, 1800, 7200, 18000, 36000, 36000)
TIMEOUT_S = (3.0, 10.0)  # connect, read
MAX_ERROR = 500


class BlockedDestination(Exception):
    """The endpoint resolves to an address webhooks may not reach."""


def body_of(event: WebhookEvent) -> bytes:
    """The JSON body of an event, as signed and sent."""
    return json.dumps({"type": event.type, "timestamp": event.created_at.isoformat(), "data": event.data},
                      separators=(",", ":"), sort_keys=True).encode()


def check_destination(url: str) -> None:
    """Refuse loopback, private, link-local and reserved addresses (unless allowed by config)."""
    if current_app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"]:
        return
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError as exc:
        raise BlockedDestination(f"cannot resolve {host}") from exc
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            raise BlockedDestination(f"{host} resolves to a non-public address")


def attempt_delivery(session: Session, *, delivery_id: uuid.UUID) -> str:
    """Try one delivery now (idempotent: finished ones are left alone); returns its status (commits)."""
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                              .with_for_update(skip_locked=True))
    if delivery is None or delivery.status not in ("pending", "retrying"):
        session.rollback()
        return delivery.status if delivery is not None else "gone"
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > utcnow() + timedelta(seconds=1):
        session.rollback()
        return "not_due"  # a resent job arrived before the scheduled retry: that one will send
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    event = session.get(WebhookEvent, delivery.event_id)
    if endpoint is None or event is None or not endpoint.enabled:
        delivery.status, delivery.last_error, delivery.next_attempt_at = "failed", "endpoint disabled", None
        session.commit()
        return delivery.status
    code, error, started = None, None, time.monotonic()
    body = body_of(event)
    try:
        check_destination(endpoint.url)
        response = requests.post(endpoint.url, data=body, timeout=TIMEOUT_S, allow_redirects=False,
                                 headers=headers_for(signing_secrets(endpoint), msg_id=str(event.id), body=body))
        code = response.status_code
        if not 200 <= code < 300:
            error = f"HTTP {code}: {response.text[:200]}"
    except (requests.RequestException, BlockedDestination) as exc:
        error = f"{exc.__class__.__name__}: {exc}"
    elapsed_ms = int((time.monotonic() - started) * 1000)
    delivery.attempts += 1
    delivery.last_status_code, delivery.last_error = code, (error or None) and error[:MAX_ERROR]
    session.add(WebhookAttempt(delivery_id=delivery.id, at=utcnow(), status_code=code,
                               error=delivery.last_error, duration_ms=elapsed_ms))
    if error is None:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = "succeeded", utcnow(), None
    elif delivery.attempts > len(RETRY_SCHEDULE_S):
        delivery.status, delivery.next_attempt_at = "failed", None
    else:
        delay = RETRY_SCHEDULE_S[delivery.attempts - 1] * (1 + random.uniform(0, 0.1))  # noqa: S311 - jitter
        delivery.status, delivery.next_attempt_at = "retrying", utcnow() + timedelta(seconds=delay)
        enqueue_after_commit(session, "jobs.webhooks.deliver_webhook", queue="default", retries=0,
                             at=delivery.next_attempt_at, job_id=f"webhook-{delivery.id}-{delivery.attempts}",
                             delivery_id=str(delivery.id))
    session.commit()
    return delivery.status


def resend_lost(session: Session, *, grace_s: int = 120, limit: int = 500) -> int:
    """Queue again deliveries due for a while whose job never ran (Redis lost it); returns how many."""
    cutoff = utcnow() - timedelta(seconds=grace_s)
    due = list(session.scalars(select(WebhookDelivery.id).where(
        WebhookDelivery.status.in_(("pending", "retrying")), WebhookDelivery.next_attempt_at < cutoff)
        .order_by(WebhookDelivery.next_attempt_at).limit(limit)))
    for delivery_id in due:
        enqueue_after_commit(session, "jobs.webhooks.deliver_webhook", queue="default", retries=0,
                             delivery_id=str(delivery_id))
    session.commit()
    return len(due)


def purge_old_events(session: Session, *, older_than: timedelta = timedelta(days=30), limit: int = 5000) -> int:
    """Drop events (with their deliveries and attempts) older than ``older_than`` whose deliveries finished."""
    cutoff = utcnow() - older_than
    unfinished = select(WebhookDelivery.event_id).where(WebhookDelivery.status.in_(("pending", "retrying")))
    ids = list(session.scalars(select(WebhookEvent.id).where(
        WebhookEvent.created_at < cutoff, WebhookEvent.id.not_in(unfinished)).limit(limit)))
    if ids:
        session.execute(delete(WebhookEvent).where(WebhookEvent.id.in_(ids)))
    session.commit()
    return len(ids)
