"""Webhook fixtures: an app allowed to call loopback, and a real HTTP receiver that records requests."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask

from backend.app import create_app
from tests.auth.conftest import auth_headers, make_user  # noqa: F401 - shared sign-in fixtures
from tests.conftest import app_settings

SERVER_KEY = "test-webhook-server-key-0123456789"


@pytest.fixture(scope="session")
def app(database_url: str, services: Any) -> Flask:
    return create_app(app_settings(database_url, services.redis_url, WEBHOOK_ALLOW_PRIVATE_NETWORKS=True,
                                   SERVER_API_KEYS=[SERVER_KEY]))


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the app's own server would be: answers with the queued statuses (then 200)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                state.requests.append(Received(dict(self.headers.items()), body))
                status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
