"""Campaign jobs: turn a launched campaign into its send ledger, then schedule dispatch."""
from __future__ import annotations

import logging
import uuid

from sqlalchemy import select

from backend.common.db import utcnow
from backend.extensions import db
from backend.notifications.campaigns import schedule as sched
from backend.notifications.campaigns.audience import Arm, distinct_zones, materialize_ledger
from backend.notifications.campaigns.models import Campaign
from backend.notifications.campaigns.services import variants_of
from backend.notifications.delivery.dispatch import schedule_dispatch
from backend.notifications.delivery.models import PushDelivery
from backend.notifications.delivery.reconcile import announce_finished

log = logging.getLogger(__name__)


def materialize_campaign(*, campaign_id: str) -> int:
    """Write one ledger row per (campaign, device) in SQL; safe to run twice or concurrently."""
    session = db.session
    # The row lock serialises concurrent runs: the second one finds every row present.
    campaign = session.scalar(select(Campaign).where(Campaign.id == uuid.UUID(campaign_id)).with_for_update())
    if campaign is None or campaign.status not in ("scheduled", "running", "paused"):
        session.rollback()
        return 0
    now = utcnow()
    # The audience is frozen by the first run: a repeat (retry, duplicate enqueue) must not
    # add devices registered since, which would change "targeted" under the marketer's feet.
    frozen = session.scalar(select(PushDelivery.id).where(PushDelivery.campaign_id == campaign.id).limit(1))
    if frozen is not None:
        session.rollback()
        return 0
    # Due instants are computed in Python over the few distinct zones, then joined in SQL.
    zones = distinct_zones(session, campaign.audience, now=now)
    dues = sched.due_by_zone(campaign.schedule, zones, now=now)
    arms = [Arm(v.key, v.weight) for v in variants_of(session, campaign.id)] or [Arm("A", 1)]
    added = materialize_ledger(
        session, campaign_id=campaign.id, audience=campaign.audience, category=campaign.category, arms=arms,
        holdout_percent=campaign.holdout_percent, dues=dues, now=now,
    )
    instants = list(session.scalars(
        select(PushDelivery.next_attempt_at).where(
            PushDelivery.campaign_id == campaign.id, PushDelivery.status.in_(("pending", "deferred")),
        ).distinct()))
    if campaign.status == "scheduled":
        if instants:
            campaign.status = "running"
        else:
            campaign.status, campaign.completed_at = "completed", now
            announce_finished(session, campaign_id=campaign.id, name=campaign.name, completed_at=now)
    if campaign.status == "running":
        schedule_dispatch(session, campaign_id=campaign.id, due_instants=instants, now=now)
    session.commit()
    log.info("campaign %s materialized: %d rows added, %d due instants", campaign_id, added, len(instants))
    return added
