"""The inbox stream path on the API: never held by a web thread (the stream server serves it; tests/streams)."""
from __future__ import annotations

STREAM = "/v1/notifications/inbox/stream"


def test_inbox_stream_on_the_api_needs_sign_in(client):
    response = client.get(STREAM)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "not_authenticated"


def test_inbox_stream_on_the_api_redirects_to_the_stream_server_keeping_the_query(
        client, app, make_user, auth_headers, monkeypatch):
    monkeypatch.setitem(app.config, "STREAM_PUBLIC_URL", "http://127.0.0.1:18601/")
    response = client.get(f"{STREAM}?last_event_id=abc", headers=auth_headers(make_user()))
    assert response.status_code == 307
    assert response.headers["Location"] == f"http://127.0.0.1:18601{STREAM}?last_event_id=abc"


def test_inbox_stream_on_the_api_without_a_stream_server_url_is_421_in_the_error_shape(
        client, app, make_user, auth_headers, monkeypatch):
    monkeypatch.setitem(app.config, "STREAM_PUBLIC_URL", "")
    response = client.get(STREAM, headers=auth_headers(make_user()))
    assert response.status_code == 421
    assert response.get_json()["error"]["code"] == "stream_server_elsewhere"
