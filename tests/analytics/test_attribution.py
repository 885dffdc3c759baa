"""Push attribution per campaign and variant: delivered → opened → converted, holdout lift, CSV, 404."""
from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import insert, text

from backend.analytics import ingest, queries
from backend.extensions import db
from backend.notifications.models import Notification
from tests.analytics.conftest import event
from tests.campaigns.conftest import create_campaign, future, marketer, marketer_headers, populate  # noqa: F401

CONVERTS = {"A": 2, "B": 4, "holdout": 1}  # of every 10 recipients
OPENS = {"A": 5, "B": 5}


def _run_campaign(client, create_campaign, marketer_headers, populate, run_jobs, app):  # noqa: F811
    """Launch a 2-variant campaign with a holdout, stand in for delivery, opens and conversions."""
    populate(200)
    campaign = create_campaign(variants=[{"key": "A", "weight": 1}, {"key": "B", "weight": 1}], holdout_percent=20,
                               schedule={"type": "at", "send_at": future(hours=1)})
    assert client.post(f"/v1/campaigns/{campaign['id']}/launch", json={}, headers=marketer_headers).status_code == 200
    run_jobs(("push",))
    cid, ledger = uuid.UUID(campaign["id"]), "push_deliveries"
    rows = db.session.execute(text(f"SELECT id, user_id, variant, status, due_at FROM {ledger} "
                                   "WHERE campaign_id = :c ORDER BY id"), {"c": cid}).all()
    limits, expected, seen = ingest.limits_from(app.config), {}, {"A": 0, "B": 0, "holdout": 0}
    opens = []
    for row in rows:
        variant, n = row.variant, seen[row.variant]
        seen[variant] += 1
        tally = expected.setdefault(variant, {"recipients": 0, "opened": 0, "open": 0, "delivery": 0})
        tally["recipients"] += 1
        if variant != "holdout":
            db.session.execute(text(f"UPDATE {ledger} SET status = 'sent', sent_at = due_at WHERE id = :id"),
                               {"id": row.id})
        opened = variant != "holdout" and n % 10 < OPENS[variant]
        if opened:
            tally["opened"] += 1
            opens.append({"id": uuid.uuid4(), "user_id": row.user_id, "category": "promotional", "title": "t",
                          "campaign_id": cid, "variant": variant, "opened_at": row.due_at + timedelta(minutes=5)})
        if n % 10 < CONVERTS[variant]:
            tally["delivery"] += 1
            tally["open"] += opened
            when = row.due_at + timedelta(minutes=30)
        elif n % 10 == 9:
            when = row.due_at + timedelta(days=2)  # converts, but outside the window
        else:
            continue
        batch = ingest.Batch(install_id=f"install-{row.user_id}", events=[event("purchase")])
        ingest.ingest_batch(db.session, batch=batch, user_id=row.user_id, client_ip=None, limits=limits, now=when)
    db.session.execute(insert(Notification), opens)
    db.session.commit()
    return cid, expected


def test_attribution_per_variant_with_holdout_lift(client, create_campaign, marketer_headers,  # noqa: F811
                                                   populate, run_jobs, app):  # noqa: F811
    cid, expected = _run_campaign(client, create_campaign, marketer_headers, populate, run_jobs, app)
    result = queries.attribution(db.session, campaign_id=cid, event="purchase", window=timedelta(days=1))
    got = {v["variant"]: v for v in result.variants}
    assert set(got) == {"A", "B", "holdout"}
    for key, tally in expected.items():
        v = got[key]
        assert v["recipients"] == tally["recipients"]
        assert v["delivered"] == (0 if key == "holdout" else tally["recipients"])
        assert v["opened"] == tally["opened"]
        assert v["converted_after_delivery"] == tally["delivery"]
        assert v["converted_after_open"] == tally["open"]
    holdout_rate = expected["holdout"]["delivery"] / expected["holdout"]["recipients"]
    b_rate = expected["B"]["delivery"] / expected["B"]["recipients"]
    assert got["B"]["lift"] == round(round(b_rate, 4) / round(holdout_rate, 4) - 1, 4)
    assert got["B"]["lift"] > got["A"]["lift"] > 0 and got["holdout"]["lift"] is None


def test_attribution_route_csv_and_unknown_campaign(client, create_campaign, marketer_headers,  # noqa: F811
                                                    populate, run_jobs, app, make_user, auth_headers):  # noqa: F811
    cid, expected = _run_campaign(client, create_campaign, marketer_headers, populate, run_jobs, app)
    response = client.get(f"/v1/analytics/campaigns/{cid}/attribution?event=purchase&window_s=86400",
                          headers=marketer_headers)
    assert response.status_code == 200, response.get_json()
    assert [v["variant"] for v in response.get_json()["variants"]] == ["A", "B", "holdout"]
    exported = client.get(f"/v1/analytics/campaigns/{cid}/attribution?event=purchase&format=csv",
                          headers=marketer_headers)
    lines = exported.get_data(as_text=True).splitlines()
    assert lines[0].startswith("variant,recipients,delivered,opened,converted_after_open")
    assert [line.split(",")[0] for line in lines[1:]] == ["A", "B", "holdout"]
    missing = client.get(f"/v1/analytics/campaigns/{uuid.uuid4()}/attribution?event=purchase",
                         headers=marketer_headers)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "campaign_not_found"
    user = auth_headers(make_user())
    assert client.get(f"/v1/analytics/campaigns/{cid}/attribution?event=purchase", headers=user).status_code == 403


def test_attribution_needs_an_event_name(client, create_campaign, marketer_headers):  # noqa: F811
    campaign = create_campaign()
    response = client.get(f"/v1/analytics/campaigns/{campaign['id']}/attribution", headers=marketer_headers)
    assert response.status_code == 422 and "event" in response.get_json()["error"]["details"]["fields"]
