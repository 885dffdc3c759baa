"""Endpoints (admin or server key) and ``emit``: the one way a domain sends an event out."""
from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from backend.common.db import utcnow
from backend.common.errors import NotFound, ValidationFailed
from backend.common.jobs import enqueue_after_commit
from backend.webhooks.events import EVENT_TYPES, is_event_type
from backend.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from backend.webhooks.signing import new_secret

SECRET_OVERLAP = timedelta(hours=24)


def signing_secrets(endpoint: WebhookEndpoint) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous during the overlap."""
    found = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and \
            endpoint.previous_secret_expires_at > utcnow():
        found.append(endpoint.previous_secret)
    return found


class EndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"


def emit(session: Session, type: str, data: dict[str, Any]) -> WebhookEvent | None:
    """Record an event for every enabled endpoint subscribed to it; sent after the caller commits.

    Does not commit: the event belongs to the caller's transaction. Returns None when no
    endpoint wants it (nothing is stored).
    """
    if not is_event_type(type):
        raise ValueError(f"undeclared webhook event type {type!r}")
    endpoints = list(session.scalars(select(WebhookEndpoint.id).where(
        WebhookEndpoint.enabled.is_(True),
        or_(WebhookEndpoint.event_types == [], WebhookEndpoint.event_types.contains([type])))))
    if not endpoints:
        return None
    event = WebhookEvent(id=uuid.uuid4(), type=type, data=data, created_at=utcnow())
    session.add(event)
    session.flush()  # no relationship() ties the rows: the event must exist before its deliveries
    now = utcnow()
    for endpoint_id in endpoints:
        delivery = WebhookDelivery(id=uuid.uuid4(), event_id=event.id, endpoint_id=endpoint_id, next_attempt_at=now,
                                   created_at=now)
        session.add(delivery)
        enqueue_after_commit(session, "jobs.webhooks.deliver_webhook", queue="default", retries=0,
                             job_id=f"webhook-{delivery.id}-0", delivery_id=str(delivery.id))
    return event


def _check(url: str | None, event_types: list[str] | None) -> None:
    problems: dict[str, list[str]] = {}
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
            problems["url"] = ["An http(s) URL without credentials."]
    unknown = sorted(set(event_types or []) - set(EVENT_TYPES))
    if unknown:
        problems["event_types"] = [f"Unknown event types: {', '.join(unknown)}."]
    if problems:
        raise ValidationFailed("The endpoint is not valid.", code="invalid_webhook_endpoint",
                               details={"fields": problems})


def create_endpoint(session: Session, *, url: str, event_types: list[str], description: str | None = None,
                    created_by: uuid.UUID | None = None) -> WebhookEndpoint:
    """Add an endpoint with a fresh secret (commits); the answer shows the secret this once."""
    _check(url, event_types)
    endpoint = WebhookEndpoint(url=url, event_types=sorted(set(event_types)), description=description,
                               secret=new_secret(), created_by=created_by)
    session.add(endpoint)
    session.commit()
    return endpoint


def endpoints_query() -> Select:
    """Every endpoint (paginate newest first)."""
    return select(WebhookEndpoint)


def get_endpoint(session: Session, *, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise EndpointNotFound("No such webhook endpoint.")
    return endpoint


def update_endpoint(session: Session, *, endpoint_id: uuid.UUID, **changes: Any) -> WebhookEndpoint:
    """Change the URL, event types, description or enabled flag (commits)."""
    endpoint = get_endpoint(session, endpoint_id=endpoint_id)
    _check(changes.get("url"), changes.get("event_types"))
    if "event_types" in changes:
        changes["event_types"] = sorted(set(changes["event_types"]))
    for name, value in changes.items():
        setattr(endpoint, name, value)
    session.commit()
    return endpoint


def rotate_secret(session: Session, *, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """Replace the signing secret (commits); for SECRET_OVERLAP the old one signs every delivery too."""
    endpoint = get_endpoint(session, endpoint_id=endpoint_id)
    endpoint.previous_secret, endpoint.previous_secret_expires_at = endpoint.secret, utcnow() + SECRET_OVERLAP
    endpoint.secret = new_secret()
    session.commit()
    return endpoint


def delete_endpoint(session: Session, *, endpoint_id: uuid.UUID) -> None:
    """Remove an endpoint and its delivery log (commits)."""
    session.delete(get_endpoint(session, endpoint_id=endpoint_id))
    session.commit()


def deliveries_query(*, endpoint_id: uuid.UUID | None = None, status: str | None = None) -> Select:
    """The delivery log, of one endpoint or all (paginate newest first)."""
    stmt = select(WebhookDelivery)
    if endpoint_id:
        stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    return stmt


def send_test_event(session: Session, *, endpoint_id: uuid.UUID) -> WebhookDelivery:
    """Queue a ``webhook.test`` event to one endpoint (commits)."""
    endpoint = get_endpoint(session, endpoint_id=endpoint_id)
    now = utcnow()
    event = WebhookEvent(id=uuid.uuid4(), type="webhook.test", data={"endpoint_id": str(endpoint.id)}, created_at=now)
    delivery = WebhookDelivery(id=uuid.uuid4(), event_id=event.id, endpoint_id=endpoint.id, next_attempt_at=now,
                               created_at=now)
    session.add(event)
    session.flush()
    session.add(delivery)
    enqueue_after_commit(session, "jobs.webhooks.deliver_webhook", queue="default", retries=0,
                         job_id=f"webhook-{delivery.id}-0", delivery_id=str(delivery.id))
    session.commit()
    return delivery
