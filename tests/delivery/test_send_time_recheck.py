"""The recipient is re-checked when the push goes, not only when its ledger row was written."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from backend.common.db import utcnow
from backend.extensions import db
from backend.notifications.delivery import engine
from backend.notifications.delivery.models import PushDelivery
from backend.notifications.devices import DeviceInfo, prune_stale_tokens, prune_token, register_device
from backend.notifications.fcm.providers import Outcome
from backend.notifications.models import Device
from backend.notifications.preferences import set_preferences
from backend.notifications.transactional import PushContent, send_to_user
from tests.delivery.factories import make_campaign, make_user

KINDS = ("campaign", "transactional")


def _rows_for(kind: str, recipient) -> None:
    """Ledger rows for every device of ``recipient``, written now, due now."""
    if kind == "campaign":
        make_campaign(db.session, [recipient], due_at=utcnow() - timedelta(seconds=1),
                      message={"default_locale": "en", "locales": {"en": {"title": "Hi {{ first_name }}",
                                                                           "body": "For you"}}})
    else:
        send_to_user(db.session, user_id=recipient.user.id,
                     content=PushContent(category="promotional", title="Hi Alice"))


def _deliver(kind: str) -> list[PushDelivery]:
    engine.run_lane(db.session, campaign_id=_campaign_id(kind), now=utcnow())
    db.session.expire_all()
    return list(db.session.scalars(select(PushDelivery)))


def _campaign_id(kind: str):
    if kind == "transactional":
        return None
    return db.session.scalar(select(PushDelivery.campaign_id).where(PushDelivery.campaign_id.is_not(None)))


@pytest.mark.parametrize("kind", KINDS)
def test_phone_signed_in_by_another_user_gets_nothing_of_the_first(app, db_session, fake_fcm, kind):
    alice = make_user(db.session, first_name="Alice")
    _rows_for(kind, alice)
    phone = alice.devices[0]
    bob = make_user(db.session, devices=0)
    register_device(db.session, user_id=bob.user.id, installation_id=phone.installation_id,
                    info=DeviceInfo(token=phone.token, platform="android"))  # Bob signs in on Alice's phone
    [row] = _deliver(kind)
    assert (row.status, row.error_code) == ("suppressed", "owner_changed")
    assert fake_fcm.messages() == []


@pytest.mark.parametrize("kind", KINDS)
def test_device_signed_out_since_the_row_was_written_is_suppressed(app, db_session, fake_fcm, kind):
    alice = make_user(db.session)
    _rows_for(kind, alice)
    db.session.delete(db.session.get(Device, alice.devices[0].id))  # sign-out deletes the device
    db.session.commit()
    [row] = _deliver(kind)
    assert (row.status, row.error_code, row.device_id) == ("suppressed", "signed_out", None)
    assert fake_fcm.messages() == []


@pytest.mark.parametrize("kind", KINDS)
def test_category_turned_off_since_the_row_was_written_is_suppressed(app, db_session, fake_fcm, kind):
    alice = make_user(db.session)
    _rows_for(kind, alice)
    set_preferences(db.session, user_id=alice.user.id, categories={"promotional": False})
    db.session.commit()
    [row] = _deliver(kind)
    assert (row.status, row.error_code) == ("suppressed", "category_disabled")
    assert fake_fcm.messages() == []


@pytest.mark.parametrize("kind", KINDS)
def test_token_gone_since_the_row_was_written_is_suppressed(app, db_session, fake_fcm, kind):
    alice = make_user(db.session, devices=2)
    _rows_for(kind, alice)
    prune_token(db.session, device_id=alice.devices[0].id, reason=Outcome.UNREGISTERED)
    db.session.commit()
    rows = {r.device_id: r for r in _deliver(kind)}
    assert (rows[alice.devices[0].id].status, rows[alice.devices[0].id].error_code) == ("suppressed", "token_gone")
    assert rows[alice.devices[1].id].status == "sent"
    assert [m["token"] for m in fake_fcm.messages()] == [alice.devices[1].token]


def test_prune_stale_tokens_clears_tokens_not_refreshed_within_the_window(app, db_session, run_jobs):
    from jobs.push import prune_stale_tokens as job

    gone, kept = make_user(db.session), make_user(db.session)
    old = utcnow() - timedelta(days=app.config["PUSH_TOKEN_STALE_DAYS"] + 1)
    db.session.execute(update(Device).where(Device.id == gone.devices[0].id).values(last_seen_at=old))
    db.session.execute(update(Device).where(Device.id == kept.devices[0].id).values(
        last_seen_at=utcnow() - timedelta(days=29)))
    db.session.commit()
    assert job() == 1
    db.session.expire_all()
    pruned, fresh = db.session.get(Device, gone.devices[0].id), db.session.get(Device, kept.devices[0].id)
    assert (pruned.token, pruned.disabled_reason) == (None, "stale_token")
    assert fresh.token is not None and fresh.disabled_at is None
    # Stricter operators follow FCM's one-month staleness rule with a shorter window.
    assert prune_stale_tokens(db.session, older_than=timedelta(days=28)) == 1
