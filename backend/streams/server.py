"""The stream server's aiohttp application: the inbox stream, /healthz and /readyz."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from aiohttp import web
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from backend.common import sse
from backend.common.errors import DomainError, ServiceUnavailable, Unauthorized
from backend.streams import opening
from backend.streams.hub import Hub, Stream

log = logging.getLogger(__name__)

INBOX_STREAM_PATH = "/v1/notifications/inbox/stream"
RETRY_MS = 3000
HUB = web.AppKey("hub", Hub)
FLASK = web.AppKey("flask", Flask)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
TOKEN_PARAMETERS = {"access_token", "token", "jwt", "authorization"}
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def build_app(flask_app: Flask) -> web.Application:
    """The aiohttp application around a configured Flask app (its keys, database, Redis)."""
    app = web.Application()
    app[FLASK] = flask_app
    app.router.add_get(INBOX_STREAM_PATH, inbox_stream)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.cleanup_ctx.append(_hub_context)
    return app


async def _hub_context(app: web.Application):
    config = app[FLASK].config
    executor = ThreadPoolExecutor(max_workers=config["STREAM_DB_THREADS"], thread_name_prefix="stream-db")
    hub = Hub(app[FLASK], executor, heartbeat_s=config["INBOX_STREAM_HEARTBEAT_S"])
    app[EXECUTOR], app[HUB] = executor, hub
    await hub.start()
    yield
    await hub.stop()
    executor.shutdown(wait=False, cancel_futures=True)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    ready = hub.subscribed.is_set()
    return web.json_response({"status": "ok" if ready else "unavailable", "open_streams": hub.open_count,
                              "pubsub": "subscribed" if ready else "reconnecting"}, status=200 if ready else 503)


def error_response(request: web.Request, error: DomainError) -> web.Response:
    """The API's error shape (``{"error": {code, message, details, request_id}}``)."""
    request_id = request.get("request_id", "")
    body = {"error": {"code": error.code, "message": error.message, "details": error.details,
                      "request_id": request_id}}
    headers = {"X-Request-ID": request_id, "Cache-Control": "no-store"}
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if getattr(error, "retry_after", None):
        headers["Retry-After"] = str(error.retry_after)
    return web.json_response(body, status=error.status, headers=headers)


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _run(request: web.Request, call: Any, /, **kwargs: Any) -> Any:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app[EXECUTOR], lambda: call(request.app[FLASK], **kwargs))


async def _authenticate(request: web.Request) -> opening.Holder:
    """A bearer access token (apps), or a browser stream ticket in the query (EventSource); never a token in the URL."""
    if TOKEN_PARAMETERS & request.query.keys():
        raise DomainError("Access tokens never go in a URL; send `Authorization: Bearer`, or mint a stream ticket "
                         "(POST /v1/notifications/inbox/stream-ticket) for a browser.", code="token_in_url")
    token, ticket = _bearer(request), request.query.get("ticket")
    if token is not None:
        return await _run(request, opening.holder_from_token, token=token)
    if ticket:
        return await _run(request, opening.holder_from_ticket, ticket=ticket)
    raise Unauthorized("Sign in to continue.", code="not_authenticated")


async def inbox_stream(request: web.Request) -> web.StreamResponse:
    """New inbox entries as server-sent events until the lifetime ends, the session ends or the client goes."""
    incoming = request.headers.get("X-Request-ID", "")
    request["request_id"] = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
    flask_app, hub = request.app[FLASK], request.app[HUB]
    stream = None
    try:
        holder = await _authenticate(request)
        last = opening.parse_event_id(request.headers.get("Last-Event-ID") or request.query.get("last_event_id"))
        stream = Stream(holder=holder, queue=asyncio.Queue(flask_app.config["STREAM_QUEUE_MAX"]),
                        task=asyncio.current_task())
        hub.add(stream)  # before the replay: what is announced meanwhile is queued, then deduplicated
        replayed = await _run(request, opening.replay, user_id=holder.user_id, last_event_id=last)
    except DomainError as error:
        return _refuse(request, hub, stream, error)
    except (SQLAlchemyError, redis.RedisError) as exc:
        log.error("stream refused, a dependency is down: %s", exc.__class__.__name__, exc_info=exc)
        return _refuse(request, hub, stream, ServiceUnavailable(
            "A backing service is unavailable; retry shortly.", code="stream_unavailable"))
    response = web.StreamResponse(headers={**SSE_HEADERS, "X-Request-ID": request["request_id"]})
    try:
        stream.anchor = replayed.anchor
        await response.prepare(request)
        await response.write(sse.retry(RETRY_MS).encode())
        for payload in replayed.events:
            await _send(response, stream, "notification", payload)
        await _serve(response, stream, lifetime_s=flask_app.config["INBOX_STREAM_LIFETIME_S"])
    except ConnectionResetError:
        pass  # the client went; nothing to tell it
    finally:
        hub.remove(stream)
    return response


def _refuse(request: web.Request, hub: Hub, stream: Stream | None, error: DomainError) -> web.Response:
    if stream is not None:
        hub.remove(stream)
    return error_response(request, error)


async def _serve(response: web.StreamResponse, stream: Stream, *, lifetime_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + lifetime_s
    while (remaining := deadline - loop.time()) > 0:
        try:
            event, payload = await asyncio.wait_for(stream.queue.get(), remaining)
        except TimeoutError:
            break
        if event == "revoked":
            await response.write(sse.event(json.dumps(payload), name="revoked").encode())
            return
        await _send(response, stream, event, payload)
    await response.write(sse.comment("stream lifetime reached; reconnect with Last-Event-ID").encode())


async def _send(response: web.StreamResponse, stream: Stream, event: str, payload: Any) -> None:
    if event == "heartbeat":
        await response.write(sse.comment("heartbeat").encode())
        return
    if event != "notification":  # media.*: live state changes, repeated for one id, never replayed
        await response.write(sse.event(json.dumps(payload), name=event).encode())
        return
    if payload["id"] in stream.seen:
        return
    stream.seen.add(payload["id"])
    await response.write(sse.event(json.dumps(payload), name=event, event_id=payload["id"]).encode())


def main(argv: list[str] | None = None) -> None:
    """Serve streams on STREAM_HOST:STREAM_PORT until SIGTERM/SIGINT."""
    from backend.app import create_app

    parser = argparse.ArgumentParser(prog="python -m backend.streams", description=main.__doc__)
    parser.add_argument("--host", help="listen address (default: STREAM_HOST)")
    parser.add_argument("--port", type=int, help="listen port (default: STREAM_PORT)")
    args = parser.parse_args(argv)
    flask_app = create_app()
    host = args.host or flask_app.config["STREAM_HOST"]
    port = args.port or flask_app.config["STREAM_PORT"]
    log.info("stream server on %s:%s", host, port)
    # Cancel a stream's handler as soon as its client goes, so its queue and holder go too.
    # A deep listen backlog: after a deploy, thousands of clients reconnect at once.
    web.run_app(build_app(flask_app), host=host, port=port, print=None, handler_cancellation=True,
                shutdown_timeout=5.0, access_log=None, backlog=4096)
