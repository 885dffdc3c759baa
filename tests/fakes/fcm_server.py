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
import json
import secrets
import socket
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web

from tests.fakes.fcm_protocol import (
    FCM_SCOPE,
    GOOGLE_TOKEN_AUDIENCE,
    JWT_GRANT_TYPE,
    STATE,
    FakeFcmConfig,
    FakeFcmState,
    bad_request,
    fcm_error,
    new_state,
    rpc_error,
    scripted_error,
    unauthenticated,
    validate_message,
)


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



def collapse_identity(message: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two copies one notification on the phone, on every platform: the Android
    notification tag, the collapse key and the APNs collapse id."""
    return (message.get("android", {}).get("notification", {}).get("tag"),
            message.get("android", {}).get("collapse_key"),
            message.get("apns", {}).get("headers", {}).get("apns-collapse-id"))

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
