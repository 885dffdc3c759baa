"""Analyst queries on a small known history: actives, retention, funnels, event counts, CSV, roles."""
from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from backend.analytics import ingest, queries
from backend.extensions import db
from tests.analytics.conftest import event

MON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def history(app, db_session, make_user):
    """Persons a, b, c (signed in) and their events, ingested at known times."""
    users = {key: make_user() for key in "abc"}
    limits = ingest.limits_from(app.config)

    def at(key: str, moment: datetime, name: str = "screen_view", platform: str = "ios", **props):
        batch = ingest.Batch(install_id=f"install-{key}-0001", platform=platform,
                             events=[event(name, properties=props)])
        ingest.ingest_batch(db.session, batch=batch, user_id=users[key].id, client_ip=None, limits=limits, now=moment)

    at("a", MON, "app_open")
    at("a", MON + timedelta(hours=1), "signup")
    at("a", MON + timedelta(hours=2), "purchase", plan="pro")
    at("a", MON + timedelta(days=1))
    at("a", MON + timedelta(days=3))
    at("b", MON + timedelta(days=1), "app_open", platform="android")
    at("b", MON + timedelta(days=1, hours=1), "purchase", platform="android", plan="free")
    at("b", MON + timedelta(days=1, hours=2), "signup", platform="android")
    at("c", MON + timedelta(days=8), "app_open")
    at("c", MON + timedelta(days=10), "signup")
    return users


def test_actives_per_day_week_and_month(history, db_session):
    days = queries.actives(db.session, interval="day", start=date(2026, 6, 1), end=date(2026, 6, 10))
    assert [n for _, n in days.series] == [1, 2, 0, 1, 0, 0, 0, 0, 1, 0]
    weeks = queries.actives(db.session, interval="week", start=date(2026, 6, 1), end=date(2026, 6, 14))
    assert weeks.series == [(date(2026, 6, 1), 2), (date(2026, 6, 8), 1)]
    months = queries.actives(db.session, interval="month", start=date(2026, 6, 1), end=date(2026, 6, 30))
    assert months.series == [(date(2026, 6, 1), 3)]
    android = queries.actives(db.session, interval="month", start=date(2026, 6, 1), end=date(2026, 6, 30),
                              platform="android")
    assert android.series == [(date(2026, 6, 1), 1)]


def test_retention_n_day_and_unbounded(history, db_session):
    n_day = queries.retention(db.session, interval="day", start=date(2026, 6, 1), end=date(2026, 6, 9), offsets=3)
    assert [(c, size, kept) for c, size, kept in n_day.cohorts] == [
        (date(2026, 6, 1), 1, [1, 1, 0, 1]), (date(2026, 6, 2), 1, [1, 0, 0, 0]), (date(2026, 6, 9), 1, [1, 0, 1, 0])]
    unbounded = queries.retention(db.session, interval="day", start=date(2026, 6, 1), end=date(2026, 6, 1),
                                  offsets=3, mode="unbounded")
    assert unbounded.cohorts == [(date(2026, 6, 1), 1, [1, 1, 1, 1])]
    weekly = queries.retention(db.session, interval="week", start=date(2026, 6, 1), end=date(2026, 6, 14), offsets=1)
    assert weekly.cohorts == [(date(2026, 6, 1), 2, [2, 0]), (date(2026, 6, 8), 1, [1, 0])]


def test_funnel_counts_ordered_steps_within_the_window(history, db_session):
    steps = [queries.FunnelStep("app_open"), queries.FunnelStep("signup"), queries.FunnelStep("purchase")]
    result = queries.funnel(db.session, steps=steps, start=date(2026, 6, 1), end=date(2026, 6, 30),
                            window=timedelta(days=1))
    # a: all three in order; b: purchase before signup (2 steps); c: signup after the window (1 step)
    assert result.groups == [(None, [3, 2, 1])]
    body = result.as_dict()["groups"][0]["steps"]
    assert [s["dropped"] for s in body] == [0, 1, 1] and body[2]["conversion"] == pytest.approx(0.3333)
    wide = queries.funnel(db.session, steps=steps[:2], start=date(2026, 6, 1), end=date(2026, 6, 30),
                          window=timedelta(days=3))
    assert wide.groups == [(None, [3, 3])]


def test_funnel_breakdown_and_property_filter(history, db_session):
    steps = [queries.FunnelStep("app_open"), queries.FunnelStep("signup")]
    by_platform = queries.funnel(db.session, steps=steps, start=date(2026, 6, 1), end=date(2026, 6, 30),
                                 window=timedelta(days=1), breakdown="platform")
    assert sorted(by_platform.groups) == [("android", [1, 1]), ("ios", [2, 1])]
    pro_steps = [queries.FunnelStep("app_open"), queries.FunnelStep("purchase", {"plan": "pro"})]
    pro = queries.funnel(db.session, steps=pro_steps,
                         start=date(2026, 6, 1), end=date(2026, 6, 30), window=timedelta(days=1))
    assert pro.groups == [(None, [3, 1])]


def test_event_counts_with_a_property_breakdown(history, db_session):
    result = queries.event_counts(db.session, start=date(2026, 6, 1), end=date(2026, 6, 30), interval="month",
                                  names=["purchase"], breakdown="plan")
    assert sorted(result.rows) == [(date(2026, 6, 1), "purchase", "free", 1), (date(2026, 6, 1), "purchase", "pro", 1)]
    everything = queries.event_counts(db.session, start=date(2026, 6, 1), end=date(2026, 6, 1))
    assert sorted((name, n) for _, name, _, n in everything.rows) == [("app_open", 1), ("purchase", 1), ("signup", 1)]


def test_query_routes_answer_analysts_in_json_and_csv(history, client, make_user, auth_headers):
    analyst = auth_headers(make_user(role="analyst"))
    response = client.get("/v1/analytics/actives?interval=week&from=2026-06-01&to=2026-06-14", headers=analyst)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["series"] == [{"period": "2026-06-01", "actives": 2},
                                             {"period": "2026-06-08", "actives": 1}]
    exported = client.get("/v1/analytics/actives?interval=week&from=2026-06-01&to=2026-06-14&format=csv",
                          headers=analyst)
    assert exported.mimetype == "text/csv"
    assert list(csv.reader(io.StringIO(exported.get_data(as_text=True)))) == [
        ["period", "actives"], ["2026-06-01", "2"], ["2026-06-08", "1"]]
    retention = client.get("/v1/analytics/retention?from=2026-06-01&to=2026-06-01&offsets=3&format=csv",
                           headers=analyst)
    assert retention.get_data(as_text=True).splitlines() == ["cohort,size,day_0,day_1,day_2,day_3",
                                                             "2026-06-01,1,1,1,0,1"]
    funnel = client.post("/v1/analytics/funnels", headers=analyst, json={
        "steps": [{"name": "app_open"}, {"name": "signup"}], "from": "2026-06-01", "to": "2026-06-30",
        "window_s": 86400, "breakdown": "platform"})
    assert funnel.status_code == 200, funnel.get_json()
    assert {g["value"]: [s["persons"] for s in g["steps"]] for g in funnel.get_json()["groups"]} == {
        "ios": [2, 1], "android": [1, 1]}
    counts = client.get("/v1/analytics/event-counts?from=2026-06-01&to=2026-06-30&interval=month"
                        "&names=purchase&breakdown=plan&format=csv", headers=analyst)
    assert counts.get_data(as_text=True).splitlines()[0] == "period,name,plan,count"


def test_query_routes_refuse_users_and_bad_ranges(client, make_user, auth_headers):
    user = auth_headers(make_user())
    assert client.get("/v1/analytics/actives?from=2026-06-01&to=2026-06-02", headers=user).status_code == 403
    analyst = auth_headers(make_user(role="analyst"))
    for url in ("/v1/analytics/actives?from=2026-06-02&to=2026-06-01",
                "/v1/analytics/actives?from=2020-01-01&to=2026-01-01",
                "/v1/analytics/actives?from=yesterday&to=2026-01-01",
                "/v1/analytics/retention?from=2026-06-01&to=2026-06-02&offsets=0"):
        response = client.get(url, headers=analyst)
        assert response.status_code == 422, url
    funnel = client.post("/v1/analytics/funnels", headers=analyst, json={
        "steps": [{"name": "only one"}], "from": "2026-06-01", "to": "2026-06-30"})
    assert funnel.status_code == 422


def test_queries_read_the_replica_when_one_is_configured(app, history, db_session, monkeypatch):
    from backend.analytics.reader import analytics_session

    monkeypatch.setitem(app.config, "ANALYTICS_DATABASE_URL", app.config["DATABASE_URL"])
    monkeypatch.delitem(app.extensions, "groundwork.analytics_engine", raising=False)
    with app.test_request_context(), analytics_session() as session:
        # The replica is another connection: it does not see this test's uncommitted rows.
        assert session is not db.session
        assert queries.actives(session, interval="month", start=date(2026, 6, 1), end=date(2026, 6, 30)).series == [
            (date(2026, 6, 1), 0)]
    app.extensions.pop("groundwork.analytics_engine").dispose()
    assert uuid.UUID(str(history["a"].id))
