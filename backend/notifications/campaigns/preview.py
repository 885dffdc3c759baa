"""Before launch: the dry run (audience per zone, variant and locale) and test sends."""
from __future__ import annotations

import uuid
from typing import Any

from flask import current_app
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.common.db import utcnow
from backend.common.errors import ValidationFailed
from backend.notifications.campaigns import schedule as sched
from backend.notifications.campaigns.audience import PUSHABLE_PERMISSIONS, Arm, audience_select, opted_out, variant_of
from backend.notifications.campaigns.models import Campaign
from backend.notifications.campaigns.services import get_campaign, variants_of
from backend.notifications.campaigns.templating import merged_message, personal_context, pick_locale, render_for
from backend.notifications.delivery.engine import deliver_rows
from backend.notifications.delivery.models import PushDelivery
from backend.notifications.models import Device, Notification

SAMPLE_NAME = "Alex"  # shows marketers what personalisation looks like with data


def _counts(rows: list[Any], key: str) -> dict[str, dict[str, int]]:
    return {getattr(row, key): {"devices": row.devices, "users": row.users} for row in rows}


def dry_run(session: Session, *, campaign_id: uuid.UUID) -> dict[str, Any]:
    """Audience size in total, per zone (with due instants), per variant/holdout, per locale, samples."""
    campaign = get_campaign(session, campaign_id=campaign_id)
    variants = variants_of(session, campaign.id)
    arms = [Arm(v.key, v.weight) for v in variants] or [Arm("A", 1)]
    now = utcnow()
    variant = variant_of(campaign.id, arms, campaign.holdout_percent).label("variant")
    suppressed = opted_out(campaign.category).label("suppressed")
    inner = audience_select(campaign.audience, now=now, columns=[
        Device.user_id, Device.time_zone, Device.locale, variant, suppressed]).subquery()
    # One scan, four groupings: per zone, per variant, per locale, and the totals.
    stmt = select(
        inner.c.suppressed, inner.c.time_zone, inner.c.variant, inner.c.locale,
        func.grouping(inner.c.time_zone, inner.c.variant, inner.c.locale).label("grouping"),
        func.count().label("devices"), func.count(inner.c.user_id.distinct()).label("users"),
    ).group_by(func.grouping_sets(
        tuple_(inner.c.suppressed, inner.c.time_zone), tuple_(inner.c.suppressed, inner.c.variant),
        tuple_(inner.c.suppressed, inner.c.locale), tuple_(inner.c.suppressed),
    ))
    result = session.execute(stmt).all()
    rows = [row for row in result if not row.suppressed]
    excluded = [row for row in result if row.suppressed and row.grouping == 7]
    by_zone = [row for row in rows if row.grouping == 3]  # only time_zone kept
    by_variant = [row for row in rows if row.grouping == 5]
    by_locale = [row for row in rows if row.grouping == 6]
    totals = next((row for row in rows if row.grouping == 7), None)
    dues = sched.due_by_zone(campaign.schedule, [row.time_zone for row in by_zone], now=now)
    total_devices = totals.devices if totals else 0
    return {
        "total": {"devices": total_devices, "users": totals.users if totals else 0},
        "suppressed": {"devices": sum(r.devices for r in excluded), "users": sum(r.users for r in excluded)},
        "by_time_zone": sorted(
            ({**dues[row.time_zone].as_dict(), "devices": row.devices, "users": row.users} for row in by_zone),
            key=lambda item: (item["due_at"], item["time_zone"])),
        "by_variant": [
            {"variant": key, **_counts(by_variant, "variant").get(key, {"devices": 0, "users": 0}),
             "share": round(_counts(by_variant, "variant").get(key, {"devices": 0})["devices"] / total_devices, 4)
             if total_devices else 0.0}
            for key in [arm.key for arm in arms] + (["holdout"] if campaign.holdout_percent else [])
        ],
        "by_locale": sorted(
            ({"locale": row.locale, "renders_as": pick_locale(campaign.message, row.locale), "devices": row.devices,
              "users": row.users} for row in by_locale), key=lambda item: -item["devices"]),
        "samples": _samples(campaign, variants),
    }


def estimate_audience(session: Session, *, audience: dict[str, Any], category: str) -> dict[str, Any]:
    """Devices and users an audience reaches right now, before any draft exists (the builder's live count)."""
    suppressed = opted_out(category).label("suppressed")
    inner = audience_select(audience, now=utcnow(), columns=[Device.user_id, suppressed]).subquery()
    rows = session.execute(select(inner.c.suppressed, func.count().label("devices"),
                                  func.count(inner.c.user_id.distinct()).label("users"))
                           .group_by(inner.c.suppressed)).all()
    reached = next((row for row in rows if not row.suppressed), None)
    opted = next((row for row in rows if row.suppressed), None)
    return {"devices": reached.devices if reached else 0, "users": reached.users if reached else 0,
            "opted_out_devices": opted.devices if opted else 0}


def test_recipients(session: Session, *, limit: int = 50) -> list[Any]:
    """Staff accounts with a pushable device: who a test send may go to."""
    return list(session.execute(
        select(User.id, User.email, User.role, func.count(Device.id).label("devices"),
               func.string_agg(func.distinct(Device.platform), ", ").label("platforms"))
        .join(Device, Device.user_id == User.id)
        .where(User.role != "user", User.status == "active", Device.token.is_not(None), Device.disabled_at.is_(None),
               Device.push_permission.in_(PUSHABLE_PERMISSIONS))
        .group_by(User.id, User.email, User.role).order_by(User.email).limit(limit)).all())


def _samples(campaign: Campaign, variants: list[Any]) -> list[dict[str, Any]]:
    samples = []
    overrides = {v.key: v.message_override for v in variants} or {"A": {}}
    for key, override in overrides.items():
        message = merged_message(campaign.message, override)
        for code in sorted(message["locales"]):
            plain = render_for(message, locale=code, context=personal_context(locale=code))
            named = render_for(message, locale=code, context=personal_context(first_name=SAMPLE_NAME, locale=code))
            samples.append({"variant": key, "locale": code, "title": plain.title, "body": plain.body,
                            "title_with_name": named.title, "body_with_name": named.body})
    return samples


def test_send(session: Session, *, campaign_id: uuid.UUID, user_ids: list[uuid.UUID],
              variant: str | None = None) -> dict[str, Any]:
    """Send the campaign now to these users' devices, marked as a test; not in the campaign's ledger or stats.

    Each device gets an inbox entry of its own (rendered for its locale, ``test: true``) and a
    transactional ledger row, delivered at once by the engine (the same claim, policy,
    classifier and record as every push), so a test send exercises the real path.
    """
    campaign = get_campaign(session, campaign_id=campaign_id)
    variants = {v.key: v.message_override for v in variants_of(session, campaign.id)} or {"A": {}}
    key = variant or sorted(variants)[0]
    if key not in variants:
        raise ValidationFailed("No such variant.", code="variant_not_found", details={"variant": key})
    message = merged_message(campaign.message, variants[key])
    rows = session.execute(
        select(Device.id, Device.token, Device.locale, Device.time_zone, Device.platform,
               User.id.label("user_id"), User.first_name, User.display_name, User.properties)
        .join(User, User.id == Device.user_id)
        .where(User.id.in_(user_ids), Device.token.is_not(None), Device.disabled_at.is_(None),
               Device.push_permission.in_(PUSHABLE_PERMISSIONS))
        .order_by(User.id, Device.id)).all()
    data = {str(k): str(v) for k, v in (message.get("data") or {}).items()}
    data.update(campaign_id=str(campaign.id), variant=key, test="true")
    now = utcnow()
    rendered, ledger = [], []
    for row in rows:
        context = personal_context(first_name=row.first_name, display_name=row.display_name, locale=row.locale,
                                   time_zone=row.time_zone, properties=row.properties)
        text = render_for(message, locale=row.locale, context=context)
        # 'transactional': a test is wanted now, whatever the tester's quiet hours or preferences.
        entry = Notification(id=uuid.uuid4(), user_id=row.user_id, category="transactional",
                             title=text.title or None, body=text.body or None, data=data,
                             deep_link=message.get("deep_link"), image_url=message.get("image_url"),
                             priority=message.get("priority") or "high", ttl_seconds=message.get("ttl_seconds"),
                             collapse_key=message.get("collapse_key"), silent=bool(message.get("silent")),
                             badge=message.get("badge"), push_due_at=now, created_at=now)
        session.add(entry)
        ledger.append(PushDelivery(notification_id=entry.id, device_id=row.id, user_id=row.user_id,
                                   time_zone=row.time_zone, locale=row.locale, due_at=now, next_attempt_at=now))
        rendered.append((row, text))
    session.flush()  # the entries first: no relationship() orders the two tables' inserts
    session.add_all(ledger)
    session.flush()
    row_ids = [d.id for d in ledger]
    session.commit()
    report = deliver_rows(session, row_ids=row_ids, app=current_app) if row_ids else None
    final = dict(session.execute(select(PushDelivery.id, PushDelivery.error_code).where(
        PushDelivery.id.in_(row_ids))).all()) if row_ids else {}
    reached = {row.user_id for row in rows}
    return {
        "results": [
            {"user_id": row.user_id, "device_id": row.id, "locale": text.locale, "title": text.title,
             "body": text.body, "outcome": report.row_outcomes.get(delivery.id, "suppressed") if report else "",
             "error_code": final.get(delivery.id)}
            for (row, text), delivery in zip(rendered, ledger, strict=True)
        ],
        "users_without_devices": [uid for uid in user_ids if uid not in reached],
    }
