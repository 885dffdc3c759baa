"""Nothing acknowledged is lost: ingest needs PostgreSQL only, so Redis down or wiped changes nothing."""
from __future__ import annotations

from sqlalchemy import text

from backend.analytics.identity import anonymous_person_id
from backend.app import create_app
from backend.extensions import db
from tests.analytics.conftest import event
from tests.conftest import app_settings

DEAD_REDIS = "redis://127.0.0.1:18499/0"  # a port of the analytics range nothing listens on


def test_ingest_with_redis_unreachable_is_acknowledged_and_stored(database_url):
    app = create_app(app_settings(database_url, DEAD_REDIS, REDIS_SOCKET_TIMEOUT_S=0.2))
    batch = [event("app_open"), event("screen_view")]
    try:
        response = app.test_client().post("/v1/analytics/events", json={"install_id": "install-no-redis",
                                                                         "events": batch})
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["accepted"] == 2
        with app.app_context():
            stored = db.session.execute(text(
                "SELECT count(*) FROM analytics_events WHERE install_id = 'install-no-redis'")).scalar()
            assert stored == 2  # committed: another connection sees it
    finally:
        with app.app_context():
            for table, column in (("analytics_events", "install_id"), ("analytics_installs", "install_id")):
                db.session.execute(text(f"DELETE FROM {table} WHERE {column} = 'install-no-redis'"))
            db.session.execute(text("DELETE FROM analytics_event_ids WHERE event_id = ANY(CAST(:ids AS uuid[]))"),
                               {"ids": [e["event_id"] for e in batch]})
            person = {"p": anonymous_person_id("install-no-redis")}
            db.session.execute(text("DELETE FROM analytics_user_days WHERE person_id = :p"), person)
            db.session.execute(text("DELETE FROM analytics_persons WHERE person_id = :p"), person)
            db.session.commit()
            db.engine.dispose()


def test_ingest_after_the_database_dropped_its_connections_is_stored_once(committed_app):
    """The write path's connections skip the pool's ping: one found dead is replaced and the batch retried."""
    client = committed_app.test_client()
    first, second = [event("app_open"), event("screen_view")], [event("purchase")]
    assert client.post("/v1/analytics/events", json={"install_id": "install-kill-01", "events": first}
                       ).get_json()["accepted"] == 2
    with committed_app.app_context():  # as a PostgreSQL restart would: every other connection of this database
        killed = db.session.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        db.session.remove()
    assert killed >= 1
    response = client.post("/v1/analytics/events", json={"install_id": "install-kill-01", "events": second + first})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"accepted": 1, "duplicates": 2, "rejected": [], "clamped": []}
    with committed_app.app_context():
        stored = db.session.execute(text(
            "SELECT count(*) FROM analytics_events WHERE install_id = 'install-kill-01'")).scalar()
        db.session.remove()
    assert stored == 3
