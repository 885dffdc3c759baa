"""FCM HTTP v1's wire protocol as the fake server speaks it: state, error shapes, validation.

Split from ``fcm_server`` (handlers, control API, runner) so each reads on its own.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"

# errorCode -> (HTTP status, google.rpc status, message) as FCM answers them.
FCM_ERRORS: dict[str, tuple[int, str, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
    ),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "QUOTA_EXCEEDED": (
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Send requests' and limit "
        "'Send requests per minute' of service 'fcm.googleapis.com'.",
    ),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
}

TOKEN_PREFIX_ERRORS: dict[str, str] = {
    "unregistered-": "UNREGISTERED",
    "invalid-": "INVALID_ARGUMENT",
    "mismatch-": "SENDER_ID_MISMATCH",
    "quota-": "QUOTA_EXCEEDED",
    "unavailable-": "UNAVAILABLE",
    "internal-": "INTERNAL",
    "thirdparty-": "THIRD_PARTY_AUTH_ERROR",
}

MESSAGE_FIELDS = {
    "name",
    "token",
    "topic",
    "condition",
    "notification",
    "data",
    "android",
    "apns",
    "webpush",
    "fcm_options",
}
NOTIFICATION_FIELDS = {"title", "body", "image"}
MAX_DATA_BYTES = 4096


@dataclass
class FakeFcmConfig:
    """Knobs a test can change at run time through ``/_fake/config``."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    random_error_codes: list[str] = field(default_factory=lambda: ["QUOTA_EXCEEDED", "UNAVAILABLE"])
    seed: int = 0
    retry_after_s: int = 10
    fail_next: int = 0
    fail_next_code: str = "UNAVAILABLE"
    auth_broken: bool = False
    token_ttl_s: int = 3600
    record_messages: bool = True


@dataclass
class FakeFcmState:
    """Everything the server remembers: its key pair, issued tokens and accepted messages."""

    project_id: str
    client_email: str
    private_key: rsa.RSAPrivateKey
    base_url: str = ""
    config: FakeFcmConfig = field(default_factory=FakeFcmConfig)
    startup_config: FakeFcmConfig = field(default_factory=FakeFcmConfig)
    rng: random.Random = field(default_factory=random.Random)
    tokens: dict[str, float] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def count(self, name: str) -> None:
        """Increment one statistics counter."""
        self.counters[name] = self.counters.get(name, 0) + 1

    def service_account(self) -> dict[str, str]:
        """The service-account JSON a client needs to talk to this server."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": "fake-key-1",
            "private_key": pem,
            "client_email": self.client_email,
            "client_id": "100000000000000000001",
            "auth_uri": f"{self.base_url}/auth",
            "token_uri": f"{self.base_url}/token",
        }


STATE = web.AppKey("fake_fcm_state", FakeFcmState)


def new_state(project_id: str = "groundwork-fake") -> FakeFcmState:
    """Create server state with a fresh 2048-bit RSA service-account key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = f"firebase-adminsdk@{project_id}.iam.gserviceaccount.com"
    return FakeFcmState(project_id=project_id, client_email=email, private_key=key)


def rpc_error(http: int, status: str, message: str, details: list[dict[str, Any]]) -> web.Response:
    """A google.rpc.Status error body as Google APIs send it."""
    body = {"error": {"code": http, "message": message, "status": status, "details": details}}
    return web.json_response(body, status=http)


def fcm_error(code: str, state: FakeFcmState, message: str | None = None) -> web.Response:
    """FCM's answer for one FcmError code, with Retry-After on 429."""
    http, status, default_message = FCM_ERRORS[code]
    response = rpc_error(http, status, message or default_message, [{"@type": FCM_ERROR_TYPE, "errorCode": code}])
    if http == 429:
        response.headers["Retry-After"] = str(state.config.retry_after_s)
    return response


def bad_request(field_name: str, description: str) -> web.Response:
    """INVALID_ARGUMENT with a google.rpc.BadRequest field violation (payload problems)."""
    details = [
        {
            "@type": BAD_REQUEST_TYPE,
            "fieldViolations": [{"field": field_name, "description": description}],
        }
    ]
    return rpc_error(400, "INVALID_ARGUMENT", description, details)


def unauthenticated(reason: str) -> web.Response:
    """401 for a missing, unknown or expired OAuth token (ErrorInfo reason as Google sends)."""
    message = (
        "Request had invalid authentication credentials. Expected OAuth 2 access token, "
        "login cookie or other valid authentication credential."
    )
    details = [
        {
            "@type": ERROR_INFO_TYPE,
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {
                "service": "fcm.googleapis.com",
                "method": "google.firebase.fcm.v1.FcmService.SendMessage",
            },
        }
    ]
    return rpc_error(401, "UNAUTHENTICATED", message, details)


def validate_message(body: Any) -> web.Response | None:
    """Check a send body like FCM does; return the error answer or None when valid."""
    if not isinstance(body, dict):
        return bad_request("", "Invalid JSON payload received. Expected an object.")
    for name in body:
        if name not in ("message", "validate_only"):
            return bad_request(name, f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.')
    message = body.get("message")
    if not isinstance(message, dict):
        return bad_request("message", "Request contains an invalid argument: message is required.")
    for name in message:
        if name not in MESSAGE_FIELDS:
            return bad_request(
                f"message.{name}",
                f"Invalid JSON payload received. Unknown name \"{name}\" at 'message': Cannot find field.",
            )
    targets = [t for t in ("token", "topic", "condition") if message.get(t)]
    if len(targets) != 1:
        return bad_request(
            "message",
            "Recipient of the message is not set."
            if not targets
            else "Exactly one of token, topic or condition must be set.",
        )
    for target in targets:
        if not isinstance(message[target], str):
            return bad_request(f"message.{target}", f"Invalid value at 'message.{target}' (TYPE_STRING)")
    data = message.get("data")
    if data is not None:
        if not isinstance(data, dict):
            return bad_request("message.data", "Invalid value at 'message.data' (Map), expected an object")
        for index, (key, value) in enumerate(data.items()):
            if not isinstance(value, str):
                where = f"message.data[{index}].value"
                return bad_request(where, f"Invalid value at '{where}' (TYPE_STRING), {json.dumps(value)}")
            if key.startswith(("google", "gcm")) or key in ("from", "message_type"):
                return bad_request(f"message.data[{index}].key", f"Invalid data key: {key}")
        if len(json.dumps(data).encode()) > MAX_DATA_BYTES:
            return bad_request("message", "Message is too big")
    notification = message.get("notification")
    if notification is not None:
        if not isinstance(notification, dict):
            return bad_request("message.notification", "Invalid value at 'message.notification'")
        for name, value in notification.items():
            if name not in NOTIFICATION_FIELDS:
                return bad_request(
                    f"message.notification.{name}",
                    f"Invalid JSON payload received. Unknown name \"{name}\" at 'message.notification'",
                )
            if not isinstance(value, str):
                return bad_request(
                    f"message.notification.{name}",
                    f"Invalid value at 'message.notification.{name}'",
                )
    for name in ("android", "apns", "webpush", "fcm_options"):
        if name in message and not isinstance(message[name], dict):
            return bad_request(f"message.{name}", f"Invalid value at 'message.{name}'")
    return None


def scripted_error(state: FakeFcmState, token: str) -> str | None:
    """The FcmError code this send must fail with, if any (prefix, fail-next, random)."""
    for prefix, code in TOKEN_PREFIX_ERRORS.items():
        if token.startswith(prefix):
            return code
    config = state.config
    if config.fail_next > 0:
        config.fail_next -= 1
        return config.fail_next_code
    if config.error_rate > 0 and state.rng.random() < config.error_rate:
        return state.rng.choice(config.random_error_codes)
    return None
