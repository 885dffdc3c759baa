"""The inbox SSE stream read from a really served app while notifications are sent."""
from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from tests.notifications.conftest import SERVER_KEY
from tests.streams.client import open_stream


@pytest.fixture
def served(committed_app, monkeypatch) -> Iterator[str]:
    """The app behind a threaded werkzeug server on a free port (real commits, real sockets)."""
    monkeypatch.setitem(committed_app.config, "INBOX_STREAM_LIFETIME_S", 8.0)
    monkeypatch.setitem(committed_app.config, "INBOX_STREAM_HEARTBEAT_S", 1.0)
    server = make_server("127.0.0.1", 0, committed_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def post_send(base: str, user_id: str, title: str) -> str:
    body = json.dumps({"user_id": user_id, "title": title, "category": "social"}).encode()
    request = urllib.request.Request(f"{base}/v1/notifications/send", data=body, method="POST", headers={
        "X-API-Key": SERVER_KEY, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["notification_ids"][0]


def test_inbox_stream_delivers_new_entries_live_and_resumes_from_last_event_id(
        served, committed_app, make_user, auth_headers):
    with committed_app.app_context():
        user, other = make_user(), make_user()
        headers, user_id, other_id = auth_headers(user), str(user.id), str(other.id)
    reader = open_stream(served, headers)
    first = post_send(served, user_id, "Live one")
    post_send(served, other_id, "Not yours")
    live = reader.next_event()
    assert (live["id"], live["title"], live["category"]) == (first, "Live one", "social")
    reader.close()

    # Sent while disconnected: replayed from PostgreSQL after the last id the client saw.
    missed = [post_send(served, user_id, f"Missed {i}") for i in range(2)]
    resumed = open_stream(served, {**headers, "Last-Event-ID": first})
    assert [resumed.next_event()["id"] for _ in missed] == missed
    resumed.close()


def test_inbox_stream_beats_and_ends_after_its_lifetime(served, committed_app, make_user, auth_headers):
    with committed_app.app_context():
        headers = auth_headers(make_user())
    reader = open_stream(served, headers)
    frames = reader.rest()
    comments = [c for frame in frames for c in frame.get("comment", [])]
    assert "heartbeat" in comments
    assert comments[-1].startswith("stream lifetime reached")


def test_inbox_stream_needs_sign_in(served):
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{served}/v1/notifications/inbox/stream", timeout=10)
    assert error.value.code == 401
