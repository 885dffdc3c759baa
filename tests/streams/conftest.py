"""The stream server as a real process next to the test app, on the same database and Redis."""
from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from backend.app import create_app
from tests.auth.conftest import auth_headers, make_user  # noqa: F401 - shared sign-in fixtures
from tests.conftest import app_settings
from tests.e2e.processes import Server, environment_of, start_stream_server

SERVER_KEY = "test-server-key-streams-0123456789"
HEARTBEAT_S = 1.0
LIFETIME_S = 8.0


@pytest.fixture(scope="session")
def app(database_url: str, services: Any) -> Flask:
    """The API app of this package: transactional sends with a server key, the outbox push backend."""
    return create_app(app_settings(database_url, services.redis_url, SERVER_API_KEYS=[SERVER_KEY],
                                   INBOX_STREAM_HEARTBEAT_S=HEARTBEAT_S, INBOX_STREAM_LIFETIME_S=LIFETIME_S))


@pytest.fixture(scope="session")
def stream_server(app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``python -m backend.streams`` with the app's settings (1 s heartbeats, 8 s lifetime)."""
    server = start_stream_server(tmp_path_factory.mktemp("streams"), env=environment_of(app, LOG_LEVEL="INFO"))
    yield server
    server.stop()


@pytest.fixture
def streams(stream_server: Server, committed_app: Flask) -> str:
    """The stream server's base URL, for a test whose data really commits (tables emptied afterwards)."""
    return stream_server.url


@pytest.fixture
def holder(committed_app, make_user, auth_headers):  # noqa: F811 - the imported fixtures
    """Make a signed-in user: (user id, bearer headers)."""

    def make():
        with committed_app.app_context():
            user = make_user()
            return user.id, auth_headers(user)

    return make


def send_notification(app: Flask, user_id: Any, title: str) -> str:
    """A transactional send through the real API (commits, then announces on Redis); its inbox entry id."""
    response = app.test_client().post("/v1/notifications/send", json={
        "user_id": str(user_id), "title": title, "category": "social"}, headers={"X-API-Key": SERVER_KEY})
    assert response.status_code in (200, 201, 202), response.get_json()
    return response.get_json()["notification_ids"][0]


def get_json(url: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> tuple[int, Any]:
    """GET a JSON document; (status, body) also for 4xx/5xx answers."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def log_of(server: Server) -> str:
    return Path(server.log_path).read_text(errors="replace")
