"""The stream server as a real process: auth, live events, replay, heartbeats, lifetime, revocation."""
from __future__ import annotations

import json
import re
import time
from datetime import timedelta

from backend.auth import accounts, deletion
from backend.auth.models import User
from backend.common.db import utcnow
from backend.extensions import db
from backend.notifications.models import Notification
from tests.e2e.processes import ROOT, environment_of, start_gunicorn
from tests.streams.client import INBOX_STREAM_PATH, open_stream
from tests.streams.conftest import HEARTBEAT_S, get_json, send_notification

ANSWERS_AT_ONCE_S = 3.0  # below the 8 s stream lifetime that held threads would wait for


def test_stream_delivers_live_entries_and_replays_after_last_event_id(streams, committed_app, holder):
    (user_id, headers), (other_id, _) = holder(), holder()
    reader = open_stream(streams, headers)
    first = send_notification(committed_app, user_id, "Live one")
    send_notification(committed_app, other_id, "Not yours")
    live = reader.next_event()
    assert (live["id"], live["title"], live["category"]) == (first, "Live one", "social")
    reader.close()

    missed = [send_notification(committed_app, user_id, f"Missed {i}") for i in range(2)]
    resumed = open_stream(streams, {**headers, "Last-Event-ID": first})
    assert [resumed.next_event()["id"] for _ in missed] == missed
    resumed.close()


def test_stream_without_a_publish_still_gets_the_entry_at_the_next_heartbeat(streams, committed_app, holder):
    user_id, headers = holder()
    reader = open_stream(streams, headers)
    with committed_app.app_context():  # committed without announcing: as if Redis lost the publish
        entry = Notification(user_id=user_id, category="social", title="Unannounced", body="")
        db.session.add(entry)
        db.session.commit()
        entry_id = str(entry.id)
        db.session.remove()
    assert reader.next_event(timeout=HEARTBEAT_S * 3 + 5)["id"] == entry_id
    reader.close()


def test_stream_beats_and_ends_after_its_lifetime(streams, committed_app, holder):
    _, headers = holder()
    started = time.monotonic()
    frames = open_stream(streams, headers).rest()
    comments = [c for frame in frames for c in frame.get("comment", [])]
    assert comments.count("heartbeat") >= 2
    assert comments[-1].startswith("stream lifetime reached")
    assert time.monotonic() - started < committed_app.config["INBOX_STREAM_LIFETIME_S"] + 5


def test_stream_refuses_a_missing_or_bad_token_in_the_error_shape(streams):
    status, body = get_json(streams + INBOX_STREAM_PATH)
    assert status == 401 and body["error"]["code"] == "not_authenticated"
    assert body["error"]["request_id"]
    status, body = get_json(streams + INBOX_STREAM_PATH, {"Authorization": "Bearer not.a.token"})
    assert status == 401 and body["error"]["code"] == "token_invalid"


def _revoked_within_bound(reader, revoke) -> dict:
    """Revoke, then count the heartbeats the stream still gets before its `revoked` event.

    Counted in heartbeats, not seconds, so a loaded machine cannot make it flaky: at most
    one beat may already be on its way when the revocation commits, and one more from the
    sweep that read the state just before the commit; the next sweep ends the stream.
    """
    while not reader.frames.empty():  # what arrived before the revocation does not count
        reader.frames.get_nowait()
    revoke()
    beats = 0
    while True:
        frame = reader.next_frame(timeout=HEARTBEAT_S * 5 + 20)
        assert frame is not None, "the stream ended without a revoked event"
        beats += frame.get("comment") == ["heartbeat"]
        if frame.get("event") == ["revoked"]:
            break
    assert beats <= 2, f"{beats} heartbeats after the revocation"
    assert reader.next_frame() is None  # and the stream is closed
    return json.loads("\n".join(frame["data"]))


def test_stream_of_a_signed_out_session_closes_within_one_heartbeat(streams, committed_app, holder):
    _, headers = holder()
    reader = open_stream(streams, headers)

    def sign_out():
        assert committed_app.test_client().post("/v1/auth/logout", headers=headers).status_code < 300

    assert _revoked_within_bound(reader, sign_out)["code"] == "session_revoked"
    status, body = get_json(streams + INBOX_STREAM_PATH, headers)
    assert status == 401 and body["error"]["code"] == "session_revoked"


def test_stream_of_a_suspended_user_closes_within_one_heartbeat(streams, committed_app, holder):
    user_id, headers = holder()
    reader = open_stream(streams, headers)

    def suspend():
        with committed_app.app_context():
            accounts.suspend_account(user_id=user_id, reason="stream test")
            db.session.remove()

    assert _revoked_within_bound(reader, suspend)["code"] == "account_suspended"


def test_stream_of_a_deleted_user_closes_within_one_heartbeat(streams, committed_app, holder):
    user_id, headers = holder()
    reader = open_stream(streams, headers)

    def erase():
        with committed_app.app_context():
            db.session.get(User, user_id).status = "pending_deletion"
            db.session.get(User, user_id).deletion_requested_at = utcnow() - timedelta(days=400)
            db.session.commit()
            assert deletion.erase_account(user_id=user_id)
            db.session.remove()

    assert _revoked_within_bound(reader, erase)["code"] == "session_revoked"


def test_more_open_streams_than_web_threads_leave_me_answering_at_once(streams, committed_app, holder, tmp_path):
    headers = [holder()[1] for _ in range(3)]
    web = start_gunicorn("wsgi:app", tmp_path, workers=1, env=environment_of(committed_app, GUNICORN_THREADS="2"))
    try:
        readers = [open_stream(streams, headers[i % len(headers)]) for i in range(12)]  # 6x the web threads
        for attempt in range(5):
            started = time.monotonic()
            status, body = get_json(web.url + "/v1/me", headers[attempt % len(headers)])
            assert status == 200, body
            # Held by web threads, the streams would leave no thread until their lifetime ends
            # (the issue: no answer in 60 s); the bound leaves room for a loaded machine.
            assert time.monotonic() - started < ANSWERS_AT_ONCE_S
        assert all(r.next_frame(timeout=HEARTBEAT_S + 5) is not None for r in readers)  # all still open
        for reader in readers:
            reader.close()
    finally:
        web.stop()


def test_stream_server_answers_its_kubernetes_probe_paths(stream_server):
    manifest = (ROOT / "deploy" / "k8s" / "stream.yaml").read_text()
    paths = set(re.findall(r"path: (/\S+)", manifest))
    assert paths == {"/healthz", "/readyz"}
    for path in paths:
        status, body = get_json(stream_server.url + path)
        assert status == 200 and body["status"] == "ok", (path, body)
