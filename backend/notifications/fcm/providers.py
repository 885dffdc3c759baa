"""Where pushes go: FCM HTTP v1, or an outbox table that records what would be sent.

Every sender in Groundwork (transactional jobs, campaign fan-out) talks to a
``PushProvider`` chosen by ``PUSH_BACKEND``; nothing else knows which one is in use.
"""
from __future__ import annotations

import atexit
import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Flask, current_app
from pyfcm import FCMNotification
from pyfcm.errors import FCMError

from backend.notifications.fcm.payload import Outcome, OutgoingMessage, SendResult, build_body

__all__ = [
    "FcmProvider",
    "OutboxProvider",
    "OutgoingPush",
    "Outcome",
    "PushProvider",
    "PushResult",
    "get_provider",
    "fcm_bodies",
    "to_fcm_message",
]

# APNs and Web Push want a few fields in their own spelling.
_APNS_PRIORITY = {"high": "10", "normal": "5"}
_ANDROID_PRIORITY = {"high": "HIGH", "normal": "NORMAL"}


@dataclass(frozen=True, slots=True)
class OutgoingPush:
    """One push to one device token; ``key`` is the caller's id for it (e.g. notification:device)."""

    key: str
    token: str
    title: str | None = None
    body: str | None = None
    image: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    deep_link: str | None = None
    ttl_seconds: int | None = None
    priority: str = "high"
    collapse_key: str | None = None
    silent: bool = False
    badge: int | None = None
    analytics_label: str | None = None
    # The identity a resend shares with the first copy (android notification tag, APNs
    # collapse id, collapse key), so a phone that got both shows one notification.
    collapse_id: str | None = None


@dataclass(frozen=True, slots=True)
class PushResult:
    """How one push ended; ``retry_after`` (seconds) is set when the provider asked to wait."""

    key: str
    outcome: Outcome
    message_id: str | None = None
    error_code: str | None = None
    retry_after: float | None = None
    detail: str | None = None


class PushProvider(Protocol):
    """Sends a batch of pushes and answers one result per message, in order."""

    project: str  # whose quota the sends count against (one backoff per project)

    def send(self, messages: list[OutgoingPush]) -> list[PushResult]: ...


def to_fcm_message(push: OutgoingPush) -> OutgoingMessage:
    """The FCM v1 message for a push: notification, data, and per-platform delivery options."""
    data = dict(push.data)
    if push.deep_link:
        data.setdefault("deep_link", push.deep_link)
    title, body = (None, None) if push.silent else (push.title, push.body)
    android: dict[str, Any] = {"priority": _ANDROID_PRIORITY[push.priority]}
    apns_headers = {"apns-priority": "5" if push.silent else _APNS_PRIORITY[push.priority]}
    apns_headers["apns-push-type"] = "background" if push.silent else "alert"
    webpush_headers = {"Urgency": push.priority}
    if push.ttl_seconds is not None:
        android["ttl"] = f"{push.ttl_seconds}s"
        # APNs takes an absolute expiry; 0 means "deliver now or never", as FCM documents.
        apns_headers["apns-expiration"] = str(int(time.time()) + push.ttl_seconds if push.ttl_seconds else 0)
        webpush_headers["TTL"] = str(push.ttl_seconds)
    collapse = push.collapse_key or push.collapse_id
    if collapse:
        android["collapse_key"] = collapse
        apns_headers["apns-collapse-id"] = collapse
        webpush_headers["Topic"] = collapse[:32]  # Web Push topics are at most 32 characters
        if not push.silent:
            android["notification"] = {"tag": collapse}  # a second copy replaces the first on screen
    aps: dict[str, Any] = {}
    if push.silent:
        aps["content-available"] = 1
    if push.badge is not None:
        aps["badge"] = push.badge
    apns: dict[str, Any] = {"headers": apns_headers}
    if aps:
        apns["payload"] = {"aps": aps}
    if push.image and not push.silent:
        apns.setdefault("payload", {"aps": {}})["aps"]["mutable-content"] = 1
        apns["fcm_options"] = {"image": push.image}
    webpush: dict[str, Any] = {"headers": webpush_headers}
    if push.deep_link and push.deep_link.startswith("https://"):
        webpush["fcm_options"] = {"link": push.deep_link}  # Web Push accepts only HTTPS links
    return OutgoingMessage(
        key=push.key,
        token=push.token,
        title=title,
        body=body,
        image=None if push.silent else push.image,
        data=data or None,
        android=android,
        apns=apns,
        webpush=webpush,
        fcm_options={"analytics_label": push.analytics_label} if push.analytics_label else None,
    )


_TOKEN_MARK = "gw-token-placeholder-9f2c4e"


def _shape(push: OutgoingPush) -> tuple[Any, ...]:
    """Everything of a push but its key and token: pushes of one shape share a request body."""
    return (push.title, push.body, push.image, tuple(push.data.items()), push.deep_link, push.ttl_seconds,
            push.priority, push.collapse_key, push.silent, push.badge, push.analytics_label, push.collapse_id)


def fcm_bodies(builder: FCMNotification, pushes: list[OutgoingPush]) -> list[tuple[str, bytes | PushResult]]:
    """Request bodies for a batch, built once per shape and completed with each token.

    A campaign's batch holds a handful of shapes (variant × locale), so pyfcm builds a
    handful of bodies instead of one per device; the token is spliced in, JSON-escaped.
    A shape pyfcm refuses answers INVALID_ARGUMENT for each of its pushes.
    """
    templates: dict[tuple[Any, ...], tuple[bytes, bytes] | PushResult] = {}
    out: list[tuple[str, bytes | PushResult]] = []
    for push in pushes:
        shape = _shape(push)
        template = templates.get(shape)
        if template is None:
            try:
                body = build_body(builder, to_fcm_message(dataclasses.replace(push, token=_TOKEN_MARK)))
                prefix, _mark, suffix = body.partition(_TOKEN_MARK.encode())
                template = (prefix, suffix)
            except (FCMError, TypeError, ValueError) as exc:
                template = PushResult("", Outcome.INVALID_ARGUMENT, detail=str(exc))
            templates[shape] = template
        if isinstance(template, PushResult):
            out.append((push.key, dataclasses.replace(template, key=push.key)))
        else:
            out.append((push.key, template[0] + json.dumps(push.token)[1:-1].encode() + template[1]))
    return out


class FcmProvider:
    """FCM HTTP v1 through the pooled sender (pyfcm payloads, cached OAuth token)."""

    def __init__(self, credentials_file: str, project_id: str = "", endpoint: str = "", **options: Any) -> None:
        from backend.notifications.fcm.client import FcmSender

        if not project_id:
            with open(credentials_file, encoding="utf-8") as handle:
                project_id = json.load(handle).get("project_id", "")
        endpoint_base = f"{endpoint.rstrip('/')}/v1/projects" if endpoint else None
        self.sender = FcmSender(credentials_file, project_id, endpoint_base=endpoint_base, **options)
        self.project = project_id
        # The sender keeps its connection pool between batches; release it when the process ends.
        atexit.register(self.sender.close)

    def send(self, messages: list[OutgoingPush]) -> list[PushResult]:
        """Send the batch; transient failures are retried briefly inside, 429 is only reported."""
        results = self.sender.run(self.send_async(messages))
        return [
            PushResult(r.key, r.outcome, r.name, r.error_code, r.retry_after, r.detail) for r in results
        ]

    async def send_async(self, messages: list[OutgoingPush],
                         on_quota: Callable[[float], None] | None = None) -> list[SendResult]:
        """The batch's requests on the running loop, bodies built once per shape (``on_quota``: see the sender)."""
        bodies = [(key, _as_send_result(body)) for key, body in fcm_bodies(self.sender.builder, messages)]
        return await self.sender.send_bodies_async(bodies, on_quota=on_quota)


def _as_send_result(body: bytes | PushResult) -> bytes | SendResult:
    if isinstance(body, PushResult):
        return SendResult(body.key, body.outcome, detail=body.detail, attempts=0)
    return body


class OutboxProvider:
    """Records each push in ``push_outbox`` (in the caller's transaction) instead of sending it."""

    def __init__(self) -> None:
        self.project = "outbox"
        # Only the payload builder is used: no credentials are read.
        self._builder = FCMNotification(service_account_file="unused", project_id="outbox")

    def send(self, messages: list[OutgoingPush]) -> list[PushResult]:
        """Store every message as the FCM body it would have been; all count as sent."""
        from backend.extensions import db
        from backend.notifications.models import PushOutbox

        results = []
        for push in messages:
            body = json.loads(build_body(self._builder, to_fcm_message(push)))["message"]
            row = PushOutbox(key=push.key, token=push.token, message=body)
            db.session.add(row)
            db.session.flush()
            results.append(PushResult(push.key, Outcome.SENT, message_id=f"outbox/{row.id}"))
        return results


_EXTENSION = "groundwork.push_provider"


def get_provider(app: Flask | None = None) -> PushProvider:
    """The app's provider per PUSH_BACKEND, built once per process (FCM keeps its token cached)."""
    app = app or current_app
    provider = app.extensions.get(_EXTENSION)
    if provider is None:
        backend = app.config["PUSH_BACKEND"]
        if backend == "fcm":
            provider = FcmProvider(
                app.config["FCM_CREDENTIALS_FILE"], app.config["FCM_PROJECT_ID"], app.config["FCM_ENDPOINT"]
            )
        elif backend == "outbox":
            provider = OutboxProvider()
        else:
            raise ValueError(f"unknown PUSH_BACKEND {backend!r} (fcm or outbox)")
        app.extensions[_EXTENSION] = provider
    return provider
