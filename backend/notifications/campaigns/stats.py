"""Campaign statistics from the send ledger and the inbox (opens), with an A/B verdict."""
from __future__ import annotations

import math
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.notifications.campaigns.services import get_campaign
from backend.notifications.delivery.models import DELIVERY_STATUSES, PushDelivery
from backend.notifications.models import Notification

SIGNIFICANCE = 0.05  # two-sided p-value below which the leading variant is called the winner
_NOT_TARGETED = ("held_out", "suppressed")


def two_proportion_p_value(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float | None:
    """Two-sided p-value of a two-proportion z-test (pooled); None when it cannot be computed."""
    if n_a == 0 or n_b == 0:
        return None
    pooled = (hits_a + hits_b) / (n_a + n_b)
    variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if variance == 0:
        return 1.0
    z = (hits_a / n_a - hits_b / n_b) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))


def _blank() -> dict[str, int]:
    return {status: 0 for status in DELIVERY_STATUSES}


def _summary(counts: dict[str, int]) -> dict[str, int]:
    total = sum(counts.values())
    return {"audience": total, "targeted": total - sum(counts[s] for s in _NOT_TARGETED), **counts}


def ab_verdict(by_variant: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Compare the two best open rates; name a winner when the difference is significant."""
    arms = [(key, v["opened_users"], v["sent_users"]) for key, v in by_variant.items()
            if key != "holdout" and v["sent_users"]]
    if len(arms) < 2:
        return None
    arms.sort(key=lambda arm: arm[1] / arm[2], reverse=True)
    (best, hits_a, n_a), (second, hits_b, n_b) = arms[0], arms[1]
    p_value = two_proportion_p_value(hits_a, n_a, hits_b, n_b)
    significant = p_value is not None and p_value < SIGNIFICANCE and hits_a / n_a > hits_b / n_b
    return {"test": "two-proportion z-test on open rate", "leader": best, "runner_up": second,
            "p_value": None if p_value is None else round(p_value, 6), "alpha": SIGNIFICANCE,
            "winner": best if significant else None}


def campaign_stats(session: Session, *, campaign_id: uuid.UUID) -> dict[str, Any]:
    """Counts by status per variant and zone, failures by reason, opens and open rates."""
    campaign = get_campaign(session, campaign_id=campaign_id)
    ledger = PushDelivery
    rows = session.execute(
        select(ledger.variant, ledger.time_zone, ledger.status, ledger.error_code, func.count().label("n"))
        .where(ledger.campaign_id == campaign.id)
        .group_by(ledger.variant, ledger.time_zone, ledger.status, ledger.error_code)).all()
    totals, failed = _blank(), defaultdict(int)
    per_variant: dict[str, dict[str, int]] = defaultdict(_blank)
    per_zone: dict[str, dict[str, int]] = defaultdict(_blank)
    for row in rows:
        totals[row.status] += row.n
        per_variant[row.variant][row.status] += row.n
        per_zone[row.time_zone][row.status] += row.n
        if row.status == "failed":
            failed[row.error_code or "unknown"] += row.n
    sent_users = dict(session.execute(
        select(ledger.variant, func.count(ledger.user_id.distinct()))
        .where(ledger.campaign_id == campaign.id, ledger.status == "sent").group_by(ledger.variant)).all())
    opened_users = dict(session.execute(
        select(Notification.variant, func.count(Notification.user_id.distinct()))
        .where(Notification.campaign_id == campaign.id, Notification.opened_at.is_not(None))
        .group_by(Notification.variant)).all())
    # Opens per zone: the zone of the device(s) the opener was sent to.
    opened_by_zone = dict(session.execute(
        select(ledger.time_zone, func.count(ledger.user_id.distinct()))
        .join(Notification, (Notification.campaign_id == ledger.campaign_id) & (Notification.user_id == ledger.user_id))
        .where(ledger.campaign_id == campaign.id, ledger.status == "sent", Notification.opened_at.is_not(None))
        .group_by(ledger.time_zone)).all())
    variants = {}
    for key, counts in sorted(per_variant.items()):
        users, opens = sent_users.get(key, 0), opened_users.get(key, 0)
        variants[key] = {"variant": key, **_summary(counts), "sent_users": users, "opened_users": opens,
                         "open_rate": round(opens / users, 4) if users else None}
    total_sent = sum(sent_users.values())
    total_opened = sum(v for k, v in opened_users.items() if k != "holdout")
    return {
        "campaign_id": campaign.id,
        "status": campaign.status,
        "totals": {**_summary(totals), "sent_users": total_sent, "opened": total_opened,
                   "open_rate": round(total_opened / total_sent, 4) if total_sent else None},
        "failed_by_reason": dict(sorted(failed.items())),
        "by_variant": list(variants.values()),
        "by_time_zone": [{"time_zone": zone, **_summary(counts), "opened": opened_by_zone.get(zone, 0)}
                         for zone, counts in sorted(per_zone.items())],
        "ab_test": ab_verdict(variants),
    }
