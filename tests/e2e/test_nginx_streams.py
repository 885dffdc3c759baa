"""nginx in front of the stream server: streams pass unbuffered, and open streams never starve the API."""
from __future__ import annotations

import http.client
import time
from typing import Any

from flask import Flask

from tests.auth.conftest import auth_headers, make_user  # noqa: F401 - shared sign-in fixtures
from tests.e2e.processes import (
    Server,
)
from tests.e2e.test_nginx import ANSWERS_AT_ONCE_S, call, stack  # noqa: F401 - the module's nginx stack
from tests.streams.client import open_stream


def _announce_entry(app: Flask, user_id: Any, title: str) -> str:
    """Commit an inbox entry and announce it the way the send paths do."""
    from backend.common.jobs import redis_client
    from backend.extensions import db
    from backend.notifications import inbox
    from backend.notifications.models import Notification

    with app.app_context():
        entry = Notification(user_id=user_id, category="social", title=title, body="")
        db.session.add(entry)
        db.session.commit()
        inbox.announce(redis_client(), [(user_id, inbox.entry_event(entry))])
        entry_id = str(entry.id)
        db.session.remove()
    return entry_id


def test_nginx_routes_the_inbox_stream_to_the_stream_server_unbuffered(
        stack: dict[str, Server], committed_app: Flask, make_user: Any, auth_headers: Any) -> None:  # noqa: F811
    with committed_app.app_context():
        user = make_user()
        headers, user_id = auth_headers(user), user.id
    base = f"http://127.0.0.1:{stack['nginx'].port}"
    reader = open_stream(base, headers)  # the retry frame came through at once
    started = time.monotonic()
    entry_id = _announce_entry(committed_app, user_id, "Through nginx")
    # Before the first heartbeat (15 s, whose poll would also bring it): nginx passed the
    # event on as it was written; a buffering proxy would hold it until the stream ends.
    assert reader.next_event(timeout=10)["id"] == entry_id
    assert time.monotonic() - started < 10.0
    reader.close()


def test_nginx_more_open_streams_than_web_threads_leave_me_answering_at_once(
        stack: dict[str, Server], committed_app: Flask, make_user: Any, auth_headers: Any) -> None:  # noqa: F811
    """Issue 12's reproduction: 30 open inbox screens against 2 workers x 4 threads."""
    with committed_app.app_context():
        headers = [auth_headers(make_user()) for _ in range(3)]
    base = f"http://127.0.0.1:{stack['nginx'].port}"
    readers = [open_stream(base, headers[i % 3]) for i in range(30)]
    try:
        for attempt in range(5):
            started = time.monotonic()
            answer = call(stack["nginx"].port, "GET", "/v1/me", headers[attempt % 3])
            assert answer.status == 200, answer.body
            # Held by web threads, the streams would leave no thread until their lifetime ends
            # (the issue: no answer in 60 s); the bound leaves room for a loaded machine.
            assert time.monotonic() - started < ANSWERS_AT_ONCE_S
    finally:
        for reader in readers:
            reader.close()


def test_nginx_open_streams_do_not_use_up_an_addresses_api_connections(
        stack: dict[str, Server], committed_app: Flask, make_user: Any, auth_headers: Any) -> None:  # noqa: F811
    """45 streams from one (NAT'd) address, above its 40 API connections: the API still answers it."""
    with committed_app.app_context():
        headers = auth_headers(make_user())
    port, source = stack["nginx"].port, "127.0.0.2"  # not in the exempt geo list
    connections = []
    try:
        for _ in range(45):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
            connection.request("GET", "/v1/notifications/inbox/stream", headers=headers)
            response = connection.getresponse()
            assert response.status == 200, response.read()
            assert response.readline() == b"retry: 3000\n"
            connections.append(connection)
        answer = call(port, "GET", "/v1/me", headers, source=source)
        assert answer.status == 200, answer.body
    finally:
        for connection in connections:
            connection.close()
