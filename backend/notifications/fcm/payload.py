"""FCM HTTP v1 message bodies (built by pyfcm) and the classification of FCM's answers."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pyfcm import FCMNotification

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"


class Outcome(StrEnum):
    """What happened to one message; the caller decides what each means for the device."""

    SENT = "sent"
    UNREGISTERED = "unregistered"
    INVALID_TOKEN = "invalid_token"
    SENDER_MISMATCH = "sender_mismatch"
    QUOTA_EXCEEDED = "quota_exceeded"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"
    AUTH_ERROR = "auth_error"
    INVALID_ARGUMENT = "invalid_argument"
    # No answer (timeout, dropped connection): FCM may have the message, so at-most-once
    # callers must never send it again.
    UNKNOWN = "unknown"


# Worth another attempt inside the same batch (FCM: retry 500/503 with backoff).
TRANSIENT = frozenset({Outcome.UNAVAILABLE, Outcome.INTERNAL})

_BY_FCM_CODE = {
    "UNREGISTERED": Outcome.UNREGISTERED,
    "SENDER_ID_MISMATCH": Outcome.SENDER_MISMATCH,
    "QUOTA_EXCEEDED": Outcome.QUOTA_EXCEEDED,
    "UNAVAILABLE": Outcome.UNAVAILABLE,
    "INTERNAL": Outcome.INTERNAL,
    "THIRD_PARTY_AUTH_ERROR": Outcome.AUTH_ERROR,
    "APNS_AUTH_ERROR": Outcome.AUTH_ERROR,
}

_BY_HTTP_STATUS = {
    400: Outcome.INVALID_ARGUMENT,
    401: Outcome.AUTH_ERROR,
    403: Outcome.AUTH_ERROR,
    404: Outcome.UNREGISTERED,
    429: Outcome.QUOTA_EXCEEDED,
    500: Outcome.INTERNAL,
    502: Outcome.UNAVAILABLE,
    503: Outcome.UNAVAILABLE,
    504: Outcome.UNAVAILABLE,
}


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One push to one device; ``key`` is the caller's id for it (e.g. campaign:device)."""

    key: str
    token: str
    title: str | None = None
    body: str | None = None
    image: str | None = None
    data: Mapping[str, str] | None = None
    android: Mapping[str, Any] | None = None
    apns: Mapping[str, Any] | None = None
    webpush: Mapping[str, Any] | None = None
    fcm_options: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """How one message ended; ``retry_after`` (seconds) is set when FCM asked to wait."""

    key: str
    outcome: Outcome
    name: str | None = None
    error_code: str | None = None
    retry_after: float | None = None
    detail: str | None = None
    status: int | None = None
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class FcmFailure:
    """FCM's error answer reduced to what the sender needs."""

    outcome: Outcome
    error_code: str | None
    detail: str
    retry_after: float | None
    token_expired: bool = False


def build_body(builder: FCMNotification, message: OutgoingMessage) -> bytes:
    """The request body pyfcm would send for this message (same JSON, same key order)."""
    return builder.parse_payload(
        fcm_token=message.token,
        notification_title=message.title,
        notification_body=message.body,
        notification_image=message.image,
        data_payload=dict(message.data) if message.data is not None else None,
        android_config=dict(message.android) if message.android is not None else None,
        apns_config=dict(message.apns) if message.apns is not None else None,
        webpush_config=dict(message.webpush) if message.webpush is not None else None,
        fcm_options=dict(message.fcm_options) if message.fcm_options is not None else None,
    )


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def classify_failure(status: int, raw: bytes, retry_after_header: str | None) -> FcmFailure:
    """Map a non-200 answer (google.rpc.Status JSON) to an Outcome."""
    try:
        error = json.loads(raw).get("error", {})
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    details = error.get("details") or []
    message = str(error.get("message") or raw[:200].decode("utf-8", "replace"))
    fcm_code = next((d.get("errorCode") for d in details if d.get("@type") == FCM_ERROR_TYPE), None)
    reasons = {d.get("reason") for d in details if d.get("@type") == ERROR_INFO_TYPE}
    outcome = _BY_FCM_CODE.get(fcm_code or "") or _BY_HTTP_STATUS.get(status)
    if outcome is None:
        outcome = Outcome.INTERNAL if status >= 500 else Outcome.INVALID_ARGUMENT
    if outcome is Outcome.INVALID_ARGUMENT and _is_token_problem(message, details):
        outcome = Outcome.INVALID_TOKEN
    return FcmFailure(
        outcome=outcome,
        error_code=fcm_code or error.get("status"),
        detail=f"{status} {message}",
        retry_after=parse_retry_after(retry_after_header),
        token_expired=status == 401 and "ACCESS_TOKEN_EXPIRED" in reasons,
    )


def _is_token_problem(message: str, details: list[dict[str, Any]]) -> bool:
    """INVALID_ARGUMENT about the registration token rather than the payload."""
    if "registration token" in message.lower():
        return True
    for detail in details:
        if detail.get("@type") == BAD_REQUEST_TYPE:
            fields = {v.get("field") for v in detail.get("fieldViolations", [])}
            if "message.token" in fields:
                return True
    return False
