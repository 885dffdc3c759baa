"""POST /v1/analytics/events: stored before the answer, deduplicated, skew-corrected, refusals per event."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from backend.analytics.identity import anonymous_person_id
from backend.extensions import db
from tests.analytics.conftest import event, iso, stored


def test_ingest_anonymous_batch_is_stored_before_the_answer(send):
    response = send([event("app_open", properties={"source": "icon"}), event("screen_view")],
                    platform="ios", app_version="1.2.0")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"accepted": 2, "duplicates": 0, "rejected": [], "clamped": []}
    rows = stored(install_id="install-0001")
    assert {r["name"] for r in rows} == {"app_open", "screen_view"}
    assert all(r["person_id"] == anonymous_person_id("install-0001") and r["user_id"] is None for r in rows)
    assert all(r["platform"] == "ios" and r["app_version"] == "1.2.0" for r in rows)
    assert next(r for r in rows if r["name"] == "app_open")["properties"] == {"source": "icon"}


def test_ingest_retried_batch_counts_once(send):
    batch = [event("purchase"), event("screen_view")]
    assert send(batch).get_json()["accepted"] == 2
    again = send(batch)
    assert again.status_code == 200
    assert again.get_json() == {"accepted": 0, "duplicates": 2, "rejected": [], "clamped": []}
    assert len(stored(install_id="install-0001")) == 2
    day = db.session.execute(text("SELECT events FROM analytics_user_days WHERE person_id = :p"),
                             {"p": anonymous_person_id("install-0001")}).scalar()
    assert day == 2


def test_ingest_duplicate_uuid_inside_one_batch_refuses_the_second(send):
    first = event("a")
    response = send([first, {**first, "name": "b"}, event("c")])
    body = response.get_json()
    assert body["accepted"] == 2
    assert body["rejected"] == [{"index": 1, "event_id": first["event_id"], "code": "duplicate_in_batch",
                                 "message": body["rejected"][0]["message"]}]
    assert {r["name"] for r in stored()} == {"a", "c"}


def test_ingest_clock_skew_is_corrected_with_sent_at(send):
    client_clock = datetime.now(UTC) + timedelta(hours=3)  # the phone runs 3 hours fast
    happened = client_clock - timedelta(minutes=10)
    before = datetime.now(UTC)
    response = send([event("late", timestamp=iso(happened))], sent_at=iso(client_clock))
    assert response.get_json()["accepted"] == 1
    placed = stored()[0]["occurred_at"]
    assert before - timedelta(minutes=10, seconds=5) <= placed <= datetime.now(UTC) - timedelta(minutes=9, seconds=55)


def test_ingest_far_future_is_clamped_and_far_past_is_refused(send):
    before = datetime.now(UTC)
    response = send([event("future", timestamp="2999-01-01T00:00:00Z"),
                     event("past", timestamp="1970-01-01T00:00:00+00:00"), event("now")])
    body = response.get_json()
    assert response.status_code == 200
    assert body["accepted"] == 2 and body["clamped"] == [0]
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(1, "too_old")]
    future = stored(name="future")[0]
    assert before <= future["occurred_at"] <= datetime.now(UTC)


def test_ingest_bad_events_are_refused_one_by_one_and_the_rest_kept(send, app):
    huge = {"blob": "x" * (app.config["ANALYTICS_MAX_PROPERTIES_BYTES"] + 1)}
    response = send([
        "not an object", {"name": "no id"}, event(""), event("bad time", timestamp="yesterday"),
        event("naive time", timestamp="2026-01-01T00:00:00"), event("props", properties=[1, 2]),
        event("huge", properties=huge), event("os", platform="symbian"), event("sess", session_id=7),
        event("fine"),
    ])
    body = response.get_json()
    assert response.status_code == 200 and body["accepted"] == 1
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (0, "invalid_event"), (1, "invalid_event_id"), (2, "invalid_name"), (3, "invalid_timestamp"),
        (4, "invalid_timestamp"), (5, "invalid_properties"), (6, "properties_too_large"),
        (7, "invalid_platform"), (8, "invalid_session_id")]
    assert [r["name"] for r in stored()] == ["fine"]


def test_ingest_malformed_batch_is_a_422_in_the_error_shape(send, client):
    for body in ({"events": [event()]}, {"install_id": "install-0001", "events": "no"},
                 {"install_id": "short", "events": [event()]}, {"install_id": "install-0001", "events": []},
                 {"install_id": "install-0001", "events": [event()], "sent_at": "later"}):
        response = client.post("/v1/analytics/events", json=body)
        assert response.status_code == 422, body
        assert response.get_json()["error"]["code"] == "validation_failed"
    assert client.post("/v1/analytics/events", data="[", content_type="application/json").status_code == 400
    assert stored() == []


def test_ingest_batch_over_the_limit_is_a_413(send, app):
    response = send([event() for _ in range(app.config["ANALYTICS_MAX_BATCH"] + 1)])
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "batch_too_large"


def test_ingest_with_a_bad_token_is_a_401(send):
    response = send([event()], headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert stored() == []


def test_ingest_client_address_is_stored_truncated(client):
    client.post("/v1/analytics/events", json={"install_id": "install-ip-01", "events": [event()]},
                environ_base={"REMOTE_ADDR": "203.0.113.77"})
    ip = db.session.execute(text("SELECT ip_prefix FROM analytics_installs WHERE install_id = :i"),
                            {"i": "install-ip-01"}).scalar()
    assert ip == "203.0.113.0/24"
    assert "203.0.113.77" not in str([tuple(r) for r in db.session.execute(text("SELECT * FROM analytics_events"))])


def test_ingest_event_in_a_month_without_partition_creates_it(send):
    # The migration creates last month onward; an event of 25 days ago may need an older month.
    response = send([event("old", timestamp=iso(datetime.now(UTC) - timedelta(days=29)))])
    assert response.get_json()["accepted"] == 1
    assert len(stored(name="old")) == 1


def test_ingest_user_properties_set_and_set_once(send):
    person = anonymous_person_id("install-0001")
    send([event()], user_properties={"set": {"plan": "free"}, "set_once": {"referrer": "ad", "plan": "x"}})
    send([event()], user_properties={"set": {"plan": "pro"}, "set_once": {"referrer": "friend", "city": "Oslo"}})
    props = db.session.execute(text("SELECT properties FROM analytics_persons WHERE person_id = :p"),
                               {"p": person}).scalar()
    assert props == {"plan": "pro", "referrer": "ad", "city": "Oslo"}


def test_ingest_event_ids_are_uuids_from_the_client(send):
    given = str(uuid.uuid4())
    send([{"event_id": given.upper(), "name": "x"}])
    assert str(stored()[0]["event_id"]) == given


def test_ingest_values_postgresql_cannot_hold_are_refused_not_500(client, send):
    body = '{"install_id": "install-0001", "events": [{"event_id": "%s", "name": "inf", "properties": {"x": 1e400}}]}'
    response = client.post("/v1/analytics/events", data=body.replace("%s", str(uuid.uuid4())),
                           content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_request"
    assert send([event(session_id="a\u0000b")]).status_code == 422  # the app refuses NUL in any body
    assert send([event()], app_version="1.0\u0001").status_code == 422
    assert stored() == []


def test_ingest_service_refuses_non_finite_properties_when_called_directly(app, db_session):
    from backend.analytics import ingest
    from backend.common.db import utcnow
    from backend.common.errors import ValidationFailed

    limits = ingest.limits_from(app.config)
    batch = ingest.Batch(install_id="install-0001", events=[event(properties={"x": float("nan")}), event("ok")])
    result = ingest.ingest_batch(db.session, batch=batch, user_id=None, client_ip=None, limits=limits, now=utcnow())
    assert result.accepted == 1 and [r["code"] for r in result.rejected] == ["invalid_properties"]
    with pytest.raises(ValidationFailed):
        ingest.ingest_batch(db.session, batch=ingest.Batch(install_id="install-0001", events=[event()],
                                                           set_once={"x": float("inf")}),
                            user_id=None, client_ip=None, limits=limits, now=utcnow())


def test_ingest_counts_stored_events_for_the_dashboard(client, send):
    def ingested() -> float:
        text = client.get("/metrics").get_data(as_text=True)
        line = next(x for x in text.splitlines() if x.startswith("groundwork_analytics_events_ingested_total "))
        return float(line.split()[1])

    before = ingested()
    batch = [event("app_open"), event("screen_view")]
    assert send(batch).status_code == 200
    assert send(batch).status_code == 200  # a retried batch stores nothing new and counts nothing
    assert ingested() == before + 2


def test_ingest_a_final_newline_is_a_control_character_too(send):
    given = str(uuid.uuid4())
    response = send([{"event_id": given + "\n", "name": "x"}, event("line\n"), event("ok", session_id="s-1\n"),
                     event("fine")])
    body = response.get_json()
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (0, "invalid_event_id"), (1, "invalid_name"), (2, "invalid_session_id")]
    assert [r["name"] for r in stored()] == ["fine"]
