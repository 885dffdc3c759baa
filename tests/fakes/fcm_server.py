"""A local FCM-compatible server speaking FCM HTTP v1 and Google's OAuth2 JWT-bearer grant.

Tests and benchmarks point pyfcm (or Groundwork's sender) at it because this machine
cannot reach Google. It issues access tokens for the service account it generated,
checks the RS256 assertion against that key, validates send requests like FCM does and
answers with FCM's real error shapes (google.rpc.Status + FcmError details).

Scripting: tokens with a prefix from ``TOKEN_PREFIX_ERRORS`` always fail with that code;
``/_fake/config`` sets latency, a seeded fraction of random 429/503 answers, "fail the
next N sends with code X" and ``auth_broken``. ``/_fake/messages`` lists accepted sends.

Run alone: ``python -m tests.fakes.fcm_server --port 9099 --write-credentials PATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import random
import secrets
import socket
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jwt
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


async def handle_token(request: web.Request) -> web.Response:
    """OAuth2 token endpoint: the JWT-bearer grant signed with the service-account key."""
    state: FakeFcmState = request.app[STATE]
    state.count("token_requests")
    form = await request.post()
    if form.get("grant_type") != JWT_GRANT_TYPE:
        return web.json_response(
            {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"},
            status=400,
        )
    if state.config.auth_broken:
        return web.json_response({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, status=400)
    try:
        claims = jwt.decode(
            str(form.get("assertion", "")),
            state.private_key.public_key(),
            algorithms=["RS256"],
            # google-auth always signs for Google's endpoint, whatever token_uri says.
            audience=[GOOGLE_TOKEN_AUDIENCE, f"{state.base_url}/token"],
            issuer=state.client_email,
            options={"require": ["exp", "iat", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        return web.json_response({"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"}, status=400)
    if FCM_SCOPE not in str(claims.get("scope", "")).split():
        return web.json_response(
            {"error": "invalid_scope", "error_description": "Missing firebase.messaging scope"},
            status=400,
        )
    token = "ya29.fake-" + secrets.token_urlsafe(24)
    state.tokens[token] = time.time() + state.config.token_ttl_s
    state.count("tokens_issued")
    return web.json_response({"access_token": token, "expires_in": state.config.token_ttl_s, "token_type": "Bearer"})


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


async def handle_send(request: web.Request) -> web.Response:
    """POST /v1/projects/{project_id}/messages:send."""
    state: FakeFcmState = request.app[STATE]
    state.count("send_requests")
    arrived = time.time()
    config = state.config
    raw = await request.read()
    if config.latency_ms > 0:
        await asyncio.sleep(config.latency_ms / 1000)
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return unauthenticated("CREDENTIALS_MISSING")
    expiry = state.tokens.get(header[7:])
    if expiry is None or config.auth_broken:
        return unauthenticated("ACCESS_TOKEN_TYPE_UNSUPPORTED")
    if expiry < time.time():
        return unauthenticated("ACCESS_TOKEN_EXPIRED")
    project_id = request.match_info["project_id"]
    if project_id != state.project_id:
        message = (
            "Permission 'cloudmessaging.messages.create' denied on resource "
            f"'//cloudresourcemanager.googleapis.com/projects/{project_id}' (or it may not exist)."
        )
        return rpc_error(403, "PERMISSION_DENIED", message, [])
    try:
        body = json.loads(raw)
    except ValueError:
        return bad_request("", "Invalid JSON payload received.")
    invalid = validate_message(body)
    if invalid is not None:
        state.count("invalid")
        return invalid
    message = body["message"]
    code = scripted_error(state, str(message.get("token", "")))
    if code is not None:
        state.count(code)
        return fcm_error(code, state)
    seq = next(state.ids)
    name = f"projects/{state.project_id}/messages/0:{int(arrived * 1e6)}%{seq:016x}"
    if body.get("validate_only"):
        return web.json_response({"name": f"projects/{state.project_id}/messages/fake_message_id"})
    state.count("accepted")
    if config.record_messages:
        state.messages.append(
            {
                "name": name,
                "token": message.get("token"),
                "topic": message.get("topic"),
                "condition": message.get("condition"),
                "message": message,
                "received_at": arrived,
            }
        )
    return web.json_response({"name": name})


async def handle_messages(request: web.Request) -> web.Response:
    """GET /_fake/messages: every accepted message, oldest first."""
    return web.json_response(request.app[STATE].messages)


async def handle_stats(request: web.Request) -> web.Response:
    """GET /_fake/stats: request counters and the current config."""
    state: FakeFcmState = request.app[STATE]
    return web.json_response({"counters": state.counters, "config": asdict(state.config)})


async def handle_reset(request: web.Request) -> web.Response:
    """POST /_fake/reset: forget messages and counters, restore the startup config; keep tokens."""
    state: FakeFcmState = request.app[STATE]
    state.messages.clear()
    state.counters.clear()
    state.config = dataclasses.replace(state.startup_config)
    state.rng.seed(state.config.seed)
    return web.json_response({"ok": True})


async def handle_config(request: web.Request) -> web.Response:
    """POST /_fake/config: change any FakeFcmConfig field; ``expire_tokens`` expires issued ones."""
    state: FakeFcmState = request.app[STATE]
    changes = await request.json()
    if changes.pop("expire_tokens", False):
        state.tokens = dict.fromkeys(state.tokens, 0.0)
    known = FakeFcmConfig.__dataclass_fields__
    unknown = [name for name in changes if name not in known]
    if unknown:
        return web.json_response({"error": f"unknown config fields: {unknown}"}, status=400)
    for name, value in changes.items():
        setattr(state.config, name, value)
    if "seed" in changes:
        state.rng.seed(state.config.seed)
    return web.json_response(asdict(state.config))


def build_app(state: FakeFcmState) -> web.Application:
    """The aiohttp application serving FCM, OAuth and the control API."""
    app = web.Application(client_max_size=1024 * 1024)
    app[STATE] = state
    app.router.add_post("/token", handle_token)
    app.router.add_post("/v1/projects/{project_id}/messages:send", handle_send)
    app.router.add_get("/_fake/messages", handle_messages)
    app.router.add_get("/_fake/stats", handle_stats)
    app.router.add_post("/_fake/reset", handle_reset)
    app.router.add_post("/_fake/config", handle_config)
    return app


def write_credentials(state: FakeFcmState, path: str | Path) -> Path:
    """Write the service-account JSON for this server to ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(state.service_account(), indent=2))
    target.chmod(0o600)
    return target


class FakeFcmControl:
    """Client of the control API, usable from any process."""

    def __init__(self, base_url: str, credentials_path: str | Path | None = None, project_id: str = "") -> None:
        self.base_url = base_url
        self.credentials_path = str(credentials_path) if credentials_path else ""
        self.project_id = project_id

    @property
    def endpoint_base(self) -> str:
        """What replaces ``https://fcm.googleapis.com/v1/projects`` in a client."""
        return f"{self.base_url}/v1/projects"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def messages(self) -> list[dict[str, Any]]:
        """Every accepted message: token, topic, condition, message payload, name, received_at."""
        return self._call("GET", "/_fake/messages")

    def stats(self) -> dict[str, Any]:
        """Counters (token_requests, send_requests, accepted, per error code) and config."""
        return self._call("GET", "/_fake/stats")

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change server knobs (see FakeFcmConfig); returns the resulting config."""
        return self._call("POST", "/_fake/config", changes)

    def reset(self) -> None:
        """Forget messages and counters and restore the default config."""
        self._call("POST", "/_fake/reset", {})


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _serve(state: FakeFcmState, host: str, port: int, ready: threading.Event | None, stop: asyncio.Event) -> None:
    runner = web.AppRunner(build_app(state), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=4096).start()
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def running_fake_fcm(project_id: str = "groundwork-fake", **config: Any) -> Iterator[FakeFcmControl]:
    """Run the fake on a free loopback port in a background thread with its own event loop."""
    state = new_state(project_id)
    port = free_port()
    state.base_url = f"http://127.0.0.1:{port}"
    for name, value in config.items():
        setattr(state.config, name, value)
    state.startup_config = dataclasses.replace(state.config)
    state.rng.seed(state.config.seed)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(_serve(state, "127.0.0.1", port, ready, stop))
        except BaseException as exc:  # surfaced to the caller below
            errors.append(exc)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="fake-fcm", daemon=True)
    thread.start()
    if not ready.wait(10) or errors:
        raise RuntimeError(f"fake FCM server did not start: {errors}")
    with tempfile.TemporaryDirectory(prefix="fake-fcm-") as tmp:
        creds = write_credentials(state, Path(tmp) / "service-account.json")
        try:
            yield FakeFcmControl(state.base_url, creds, project_id)
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(10)


def main(argv: list[str] | None = None) -> None:
    """Command line: serve until Ctrl-C, optionally writing the service-account file first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9099)
    parser.add_argument("--project-id", default="groundwork-fake")
    parser.add_argument("--write-credentials", metavar="PATH")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-record", action="store_true", help="do not keep accepted messages")
    args = parser.parse_args(argv)
    state = new_state(args.project_id)
    state.base_url = f"http://{args.host}:{args.port}"
    state.config.latency_ms = args.latency_ms
    state.config.error_rate = args.error_rate
    state.config.seed = args.seed
    state.config.record_messages = not args.no_record
    state.startup_config = dataclasses.replace(state.config)
    state.rng.seed(args.seed)
    if args.write_credentials:
        print(
            f"service account written to {write_credentials(state, args.write_credentials)}",
            flush=True,
        )
    print(f"fake FCM listening on {state.base_url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(state, args.host, args.port, None, asyncio.Event()))


if __name__ == "__main__":
    main()
