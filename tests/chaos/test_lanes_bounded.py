"""Through a long campaign, with the reconciler running far more often than in production,
the jobs queued for the campaign stay bounded (no pile-up of idle lanes or dispatches)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from backend.common.db import utcnow
from backend.common.jobs import get_queue
from backend.extensions import db
from backend.notifications.delivery import reconcile
from backend.notifications.delivery.dispatch import schedule_dispatch
from tests.chaos.conftest import Workers
from tests.delivery.factories import bulk_campaign
from tests.waiting import wait_for

pytestmark = pytest.mark.chaos


def test_queued_dispatches_and_lanes_stay_bounded_through_a_long_campaign(committed_app, fake_fcm,
                                                                          workers: Workers):
    fake_fcm.configure(latency_ms=800)  # slow answers keep the campaign's lanes busy for a while
    with committed_app.app_context():
        due = utcnow() - timedelta(seconds=1)
        campaign_id = bulk_campaign(db.session, 4000, due_at=due)
        schedule_dispatch(db.session, campaign_id=campaign_id, due_instants=[due])
        db.session.commit()
        workers.start("push")
        queued: list[int] = []
        seen: list[list[str]] = []

        def finished() -> bool:
            reconcile.reconcile(db.session)  # five runs a second: 75 times production's pace
            ids = get_queue("push").job_ids
            queued.append(sum(1 for job_id in ids if str(campaign_id) in job_id))
            seen.append([job_id.replace(str(campaign_id), "C") for job_id in ids])
            left = db.session.execute(db.text(
                "SELECT count(*) FROM push_deliveries WHERE campaign_id = :c AND status <> 'sent'"),
                {"c": campaign_id}).scalar_one()
            db.session.rollback()
            return left == 0

        wait_for(finished, timeout=180, every=0.2, what="the campaign to be sent")
        assert len(queued) >= 20  # the reconciler really ran throughout
        # At any moment: at most one queued dispatch and one handed-over lane of the campaign.
        assert max(queued) <= 2, (queued, [ids for ids in seen if len(ids) > 2][:3])
        assert len(fake_fcm.messages()) == 4000
