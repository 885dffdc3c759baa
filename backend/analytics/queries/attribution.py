"""Push attribution (per campaign and variant): delivered, opened, converted, and lift over the holdout.

A conversion is a ``event`` (optionally with matching properties) by the recipient
within ``window`` after an anchor: after the open (``converted_after_open``, among
openers) and after the delivery (``converted_after_delivery``). The held-out group was
never sent anything, so its anchor is the time it would have been sent; its rate of
conversion after "delivery" is the baseline, and each variant's ``lift`` is its own
delivery-anchored rate over that baseline, minus one. Events are matched through the
(person, time) index of the months concerned.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.analytics.attribution_source import RECIPIENTS_SQL
from backend.analytics.queries.common import Table
from backend.common.errors import ValidationFailed
from backend.notifications.campaigns.services import get_campaign

HOLDOUT = "holdout"
COLUMNS = ("variant", "recipients", "delivered", "opened", "converted_after_open", "converted_after_delivery")


@dataclass(frozen=True)
class AttributionResult:
    campaign_id: uuid.UUID
    event: str
    window: timedelta
    variants: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "event": self.event, "window_s": int(self.window.total_seconds()),
                "variants": self.variants}

    def table(self) -> Table:
        header = [*COLUMNS, "open_rate", "conversion_rate", "lift"]
        return Table(header, [[v[c] for c in header] for v in self.variants])


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def attribution(session: Session, *, campaign_id: uuid.UUID, event: str | None, window: timedelta,
                where: dict[str, Any] | None = None) -> AttributionResult:
    """Funnel delivered → opened → converted per variant, with the holdout's conversion beside it."""
    if not timedelta(seconds=1) <= window <= timedelta(days=90):
        raise ValidationFailed("The window is 1 second to 90 days.", details={"fields": {"window_s": ["1 s to 90 d"]}})
    get_campaign(session, campaign_id=campaign_id)  # unknown: 404 campaign_not_found, before any 422
    if not event:
        raise ValidationFailed("Name the conversion event.", details={"fields": {"event": ["required"]}})
    match = "e.person_id = r.user_id AND e.name = :event"
    if where:
        match += " AND e.properties @> CAST(:where AS jsonb)"
    sql = f"""
    WITH r AS ({RECIPIENTS_SQL}),
    scored AS (
        SELECT r.variant, r.delivered, r.held_out, r.opened_at IS NOT NULL AND r.delivered AS opened,
               r.opened_at IS NOT NULL AND r.delivered AND EXISTS (
                   SELECT 1 FROM analytics_events e WHERE {match}
                   AND e.occurred_at >= r.opened_at AND e.occurred_at < r.opened_at + :window) AS after_open,
               (r.delivered OR r.held_out) AND EXISTS (
                   SELECT 1 FROM analytics_events e WHERE {match}
                   AND e.occurred_at >= r.anchor_at AND e.occurred_at < r.anchor_at + :window) AS after_delivery
        FROM r
    )
    SELECT variant, count(*) FILTER (WHERE delivered OR held_out) AS recipients,
           count(*) FILTER (WHERE delivered) AS delivered, count(*) FILTER (WHERE opened) AS opened,
           count(*) FILTER (WHERE after_open) AS converted_after_open,
           count(*) FILTER (WHERE after_delivery) AS converted_after_delivery
    FROM scored GROUP BY variant ORDER BY variant = '{HOLDOUT}', variant
    """
    rows = session.execute(text(sql), {"campaign": campaign_id, "event": event, "window": window,
                                       "where": json.dumps(where or {})}).mappings().all()
    variants = [dict(row) for row in rows]
    baseline = next((v for v in variants if v["variant"] == HOLDOUT), None)
    base_rate = _rate(baseline["converted_after_delivery"], baseline["recipients"]) if baseline else None
    for v in variants:
        held = v["variant"] == HOLDOUT
        v["open_rate"] = None if held else _rate(v["opened"], v["delivered"])
        v["conversion_rate"] = _rate(v["converted_after_delivery"], v["recipients"])
        v["lift"] = (round(v["conversion_rate"] / base_rate - 1, 4)
                     if not held and base_rate and v["conversion_rate"] is not None else None)
    return AttributionResult(campaign_id, event, window, variants)
