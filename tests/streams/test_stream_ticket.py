"""Browser stream tickets: minted by the API, redeemed once by the stream server, never a token in a URL."""
from __future__ import annotations

import redis

from tests.streams.client import INBOX_STREAM_PATH, open_stream
from tests.streams.conftest import HEARTBEAT_S, get_json, send_notification
from tests.waiting import wait_for

TICKET_PATH = "/v1/notifications/inbox/stream-ticket"


def mint(app, headers) -> dict:
    response = app.test_client().post(TICKET_PATH, headers=headers)
    assert response.status_code == 201, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def test_ticket_opens_the_stream_once_without_a_header(streams, committed_app, holder):
    user_id, headers = holder()
    minted = mint(committed_app, headers)
    assert minted["expires_in"] == committed_app.config["STREAM_TICKET_TTL_S"]
    assert minted["stream_url"] == f"{INBOX_STREAM_PATH}?ticket={minted['ticket']}"

    reader = open_stream(streams, query=f"?ticket={minted['ticket']}")  # no Authorization header
    entry_id = send_notification(committed_app, user_id, "For the browser")
    assert reader.next_event()["id"] == entry_id
    reader.close()

    status, body = get_json(streams + minted["stream_url"])  # the same URL again: used up
    assert status == 401 and body["error"]["code"] == "ticket_invalid"


def test_ticket_resumes_from_last_event_id_in_the_query(streams, committed_app, holder):
    user_id, headers = holder()
    first = send_notification(committed_app, user_id, "Seen")
    missed = send_notification(committed_app, user_id, "Missed")
    ticket = mint(committed_app, headers)["ticket"]
    reader = open_stream(streams, query=f"?ticket={ticket}&last_event_id={first}")
    assert reader.next_event()["id"] == missed
    reader.close()


def test_ticket_expires(streams, committed_app, holder, redis_conn: redis.Redis, monkeypatch):
    _, headers = holder()
    monkeypatch.setitem(committed_app.config, "STREAM_TICKET_TTL_S", 1)
    ticket = mint(committed_app, headers)["ticket"]
    wait_for(lambda: not redis_conn.keys("groundwork:stream-ticket:*"), timeout=10, what="the ticket's expiry")
    status, body = get_json(f"{streams}{INBOX_STREAM_PATH}?ticket={ticket}")
    assert status == 401 and body["error"]["code"] == "ticket_invalid"


def test_ticket_of_a_signed_out_session_opens_nothing_and_its_stream_ends(streams, committed_app, holder):
    _, headers = holder()
    client = committed_app.test_client()
    streaming, unused = mint(committed_app, headers)["ticket"], mint(committed_app, headers)["ticket"]
    reader = open_stream(streams, query=f"?ticket={streaming}")
    assert client.post("/v1/auth/logout", headers=headers).status_code < 300

    assert reader.next_event("revoked", timeout=HEARTBEAT_S + 5)["code"] == "session_revoked"
    status, body = get_json(f"{streams}{INBOX_STREAM_PATH}?ticket={unused}")
    assert status == 401 and body["error"]["code"] == "session_revoked"


def test_ticket_is_single_purpose_and_minting_needs_sign_in(streams, committed_app, holder):
    _, headers = holder()
    ticket = mint(committed_app, headers)["ticket"]
    client = committed_app.test_client()
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {ticket}"}).status_code == 401
    response = client.post(TICKET_PATH)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "not_authenticated"
    status, body = get_json(f"{streams}{INBOX_STREAM_PATH}?ticket=nonsense")
    assert status == 401 and body["error"]["code"] == "ticket_invalid"


def test_stream_refuses_an_access_token_in_the_url(streams, committed_app, holder):
    _, headers = holder()
    token = headers["Authorization"].removeprefix("Bearer ")
    status, body = get_json(f"{streams}{INBOX_STREAM_PATH}?access_token={token}")
    assert status == 400 and body["error"]["code"] == "token_in_url"
