"""P11: pushes held by quiet hours go out as one summary when the window opens, if the category asks."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from backend.extensions import db
from backend.notifications.delivery import engine
from backend.notifications.delivery.models import PushDelivery
from backend.notifications.transactional import PushContent, send_to_user
from tests.delivery.factories import make_user


def _quiet_now():
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return (now - timedelta(hours=1)).time(), (now + timedelta(hours=1)).time()


def _send_three(user, category: str) -> datetime:
    deliver_at = None
    for title in ("Ada liked your photo", "Bo followed you", "Cy commented"):
        summary = send_to_user(db.session, user_id=user.user.id, content=PushContent(category=category, title=title))
        assert summary.status == "deferred"
        deliver_at = summary.deliver_at
    return deliver_at


def test_held_social_pushes_go_out_as_one_summary_when_quiet_hours_end(app, db_session, fake_fcm):
    user = make_user(db.session, quiet=_quiet_now())
    ends = _send_three(user, "social")
    engine.run_lane(db.session, campaign_id=None, now=ends - timedelta(minutes=1))
    assert fake_fcm.messages() == []  # still quiet
    engine.run_lane(db.session, campaign_id=None, now=ends + timedelta(seconds=1))
    [message] = [m["message"] for m in fake_fcm.messages()]
    assert message["notification"]["title"] == "3 new notifications"
    assert message["notification"]["body"] == "Cy commented · Bo followed you · Ada liked your photo"
    assert message["data"]["digest"] == "3" and len(message["data"]["notification_ids"].split(",")) == 3
    db.session.expire_all()
    rows = list(db.session.scalars(select(PushDelivery)))
    outcome = sorted((r.status, r.error_code or "") for r in rows)
    assert outcome == [("sent", ""), ("sent", "digest"), ("sent", "digest")]


def test_categories_not_asking_for_digests_send_each_push(app, db_session, fake_fcm):
    user = make_user(db.session, quiet=_quiet_now())
    ends = _send_three(user, "promotional")
    engine.run_lane(db.session, campaign_id=None, now=ends + timedelta(seconds=1))
    titles = sorted(m["message"]["notification"]["title"] for m in fake_fcm.messages())
    assert titles == ["Ada liked your photo", "Bo followed you", "Cy commented"]


def test_social_pushes_not_held_are_not_folded(app, db_session, fake_fcm):
    user = make_user(db.session)
    for title in ("One", "Two"):
        send_to_user(db.session, user_id=user.user.id, content=PushContent(category="social", title=title))
    engine.run_lane(db.session, campaign_id=None)
    assert sorted(m["message"]["notification"]["title"] for m in fake_fcm.messages()) == ["One", "Two"]
