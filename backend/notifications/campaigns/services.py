"""Campaign services: drafts, validation, launch, pause/resume/cancel.

Campaigns are team-wide: every marketer sees and edits every draft. Launch commits the
state change first and only then (after commit) enqueues materialization, so the job
always finds the campaign it was sent for.
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.orm import Session

from backend.common.db import utcnow
from backend.common.errors import Conflict, NotFound, ValidationFailed
from backend.common.jobs import enqueue_after_commit
from backend.common.locales import is_language_tag
from backend.notifications.campaigns import schedule as sched
from backend.notifications.campaigns.audience import distinct_zones, parse_version
from backend.notifications.campaigns.models import Campaign, CampaignVariant
from backend.notifications.campaigns.templating import check_message_templates, merged_message
from backend.notifications.delivery.dispatch import schedule_dispatch
from backend.notifications.delivery.models import PushDelivery
from backend.notifications.topics import TOPIC_NAME

MATERIALIZE_JOB = "jobs.campaigns.materialize_campaign"
FCM_PAYLOAD_LIMIT = 4096  # bytes FCM accepts in one message
# FCM refuses these data keys (its own namespace) and Android reserves the rest.
_RESERVED_DATA_KEY = re.compile(r"^(from|notification|message_type|collapse_key|google\..*|gcm\..*)$")
EDITABLE = ("draft", "scheduled", "running")  # the latter two only before their first send
_TARGETING = ("audience", "variants", "holdout_percent", "schedule", "category")


def _invalid(code: str, message: str, field: str, **details: Any) -> ValidationFailed:
    return ValidationFailed(message, code=code, details={"field": field, **details})


def check_locale(code: str, *, field: str) -> None:
    """Raise ``invalid_locale`` unless ``code`` is a BCP 47 language tag."""
    if not is_language_tag(code):
        raise _invalid("invalid_locale", f"{code!r} is not a BCP 47 language tag (e.g. en, fr-CA).", field)


def check_zone(name: str, *, field: str) -> None:
    """Raise ``invalid_time_zone`` unless ``name`` is an IANA zone."""
    if not sched.is_valid_zone(name):
        raise _invalid("invalid_time_zone", f"{name!r} is not an IANA time zone.", field)


def _check_message(message: dict[str, Any], *, field: str, partial: bool) -> None:
    for code in message.get("locales", {}):
        check_locale(code, field=f"{field}.locales")
    if "default_locale" in message:
        check_locale(message["default_locale"], field=f"{field}.default_locale")
        if not partial and message["default_locale"] not in message.get("locales", {}):
            raise _invalid("default_locale_missing", "The default locale needs a title and body.",
                           f"{field}.default_locale")
    for key in message.get("data") or {}:
        if _RESERVED_DATA_KEY.match(key):
            raise _invalid("reserved_data_key", f"{key!r} is reserved by FCM.", f"{field}.data")
    check_message_templates(message, prefix=field)


def payload_size(message: dict[str, Any]) -> int:
    """Bytes of the largest push ``message`` can produce (longest locale, all options)."""
    texts = message.get("locales", {}).values() or [{}]
    longest = max(texts, key=lambda t: len(json.dumps(t, ensure_ascii=False).encode()))
    body = {
        "notification": {**longest, "image": message.get("image_url")},
        "data": {**(message.get("data") or {}), "deep_link": message.get("deep_link") or "",
                 "campaign_id": str(uuid.UUID(int=0)), "variant": "X" * 16},
    }
    return len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())


def _check_schedule(schedule: dict[str, Any], *, now: datetime, launching: bool) -> None:
    check_zone(schedule.get("fallback_zone") or "UTC", field="schedule.fallback_zone")
    kind = schedule["type"]
    if kind == "at":
        if not schedule.get("send_at"):
            raise _invalid("send_at_required", "A schedule of type 'at' needs send_at.", "schedule.send_at")
        if launching and datetime.fromisoformat(schedule["send_at"]) < now - sched.GRACE:
            raise _invalid("schedule_in_past", "send_at is in the past.", "schedule.send_at")
    if kind == "local":
        if not schedule.get("local_time"):
            raise _invalid("local_time_required", "A local schedule needs local_time (HH:MM).", "schedule.local_time")
        last = sched.latest_possible_due(schedule)
        if launching and last is not None and last < now - sched.GRACE:
            raise _invalid("schedule_in_past", "That local date and time has passed everywhere.", "schedule.date")


def validate_audience(audience: dict[str, Any]) -> None:
    """Check an audience's topic, zones, locales, versions and property filters."""
    if audience.get("type") == "topic":
        if not audience.get("topic"):
            raise _invalid("topic_required", "A topic audience needs a topic.", "audience.topic")
        if not TOPIC_NAME.fullmatch(audience["topic"]):
            raise _invalid("invalid_topic_name", "Topic names are 1-64 of a-z 0-9 - _ . ~ %.", "audience.topic")
    filters = audience.get("filters") or {}
    for zone in filters.get("time_zones") or []:
        check_zone(zone, field="audience.filters.time_zones")
    for code in filters.get("locales") or []:
        check_locale(code, field="audience.filters.locales")
    for bound in ("app_version_min", "app_version_max"):
        if filters.get(bound):
            try:
                parse_version(filters[bound])
            except ValueError as exc:
                raise _invalid("invalid_app_version", str(exc), f"audience.filters.{bound}") from exc
    for key, value in (filters.get("properties") or {}).items():
        if not isinstance(value, str | int | float | bool):
            raise _invalid("invalid_property_filter", "Property filters compare plain values.",
                           f"audience.filters.properties.{key}")


def validate_campaign(data: dict[str, Any], *, now: datetime, launching: bool = False) -> None:
    """Check what the schema cannot: zones, locales, topic, templates, payload size, dates."""
    validate_audience(data["audience"])
    _check_message(data["message"], field="message", partial=False)
    keys = [v["key"] for v in data["variants"]]
    if len(set(keys)) != len(keys):
        raise _invalid("duplicate_variant", "Variant keys must be unique.", "variants")
    for variant in data["variants"]:
        field = f"variants.{variant['key']}.message_override"
        _check_message(variant.get("message_override") or {}, field=field, partial=True)
        merged = merged_message(data["message"], variant.get("message_override"))
        if payload_size(merged) > FCM_PAYLOAD_LIMIT:
            raise _invalid("payload_too_large", f"The push would exceed FCM's {FCM_PAYLOAD_LIMIT} bytes.", field,
                           max_bytes=FCM_PAYLOAD_LIMIT)
    if payload_size(data["message"]) > FCM_PAYLOAD_LIMIT:
        raise _invalid("payload_too_large", f"The push would exceed FCM's {FCM_PAYLOAD_LIMIT} bytes.", "message",
                       max_bytes=FCM_PAYLOAD_LIMIT)
    _check_schedule(data["schedule"], now=now, launching=launching)
    if data.get("expires_at") is not None:
        first = sched.earliest_possible_due(data["schedule"], now=now)
        if data["expires_at"] <= first:
            raise _invalid("expiry_before_send", "expires_at must be after the first send.", "expires_at",
                           first_due_at=first.isoformat())


def _serialise(data: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready copy of the loaded fields (dates as ISO strings)."""
    out = dict(data)
    if "schedule" in out:
        schedule = dict(out["schedule"])
        if schedule.get("send_at") is not None:
            schedule["send_at"] = schedule["send_at"].isoformat()
        if schedule.get("date") is not None:
            schedule["date"] = schedule["date"].isoformat()
        out["schedule"] = schedule
    return out


def _as_fields(campaign: Campaign, variants: list[CampaignVariant]) -> dict[str, Any]:
    return {
        "audience": campaign.audience, "message": campaign.message, "schedule": campaign.schedule,
        "holdout_percent": campaign.holdout_percent, "expires_at": campaign.expires_at,
        "category": campaign.category,
        "variants": [{"key": v.key, "weight": v.weight, "message_override": v.message_override} for v in variants],
    }


def variants_of(session: Session, campaign_id: uuid.UUID) -> list[CampaignVariant]:
    """A campaign's variants in key order."""
    return list(session.scalars(
        select(CampaignVariant).where(CampaignVariant.campaign_id == campaign_id).order_by(CampaignVariant.key)))


def _replace_variants(session: Session, campaign: Campaign, variants: list[dict[str, Any]]) -> None:
    session.execute(delete(CampaignVariant).where(CampaignVariant.campaign_id == campaign.id))
    for variant in variants:
        session.add(CampaignVariant(campaign_id=campaign.id, key=variant["key"], weight=variant["weight"],
                                    message_override=variant.get("message_override") or {}))


def create_campaign(session: Session, *, data: dict[str, Any], created_by: uuid.UUID | None) -> Campaign:
    """Create a draft from validated fields."""
    data = _serialise({**data, "variants": data.get("variants") or [{"key": "A", "weight": 1}]})
    validate_campaign({**data, "schedule": data["schedule"], "expires_at": data.get("expires_at")}, now=utcnow())
    variants = data.pop("variants")
    campaign = Campaign(**data, created_by=created_by, status="draft")
    session.add(campaign)
    session.flush()
    _replace_variants(session, campaign, variants)
    session.commit()
    return campaign


def get_campaign(session: Session, *, campaign_id: uuid.UUID, for_update: bool = False) -> Campaign:
    """One campaign, or ``campaign_not_found``."""
    stmt = select(Campaign).where(Campaign.id == campaign_id)
    campaign = session.scalar(stmt.with_for_update() if for_update else stmt)
    if campaign is None:
        raise NotFound("No such campaign.", code="campaign_not_found")
    return campaign


def campaigns_query(*, status: str | None = None) -> Select:
    """All campaigns (team-wide), optionally by status, for cursor pagination."""
    stmt = select(Campaign)
    return stmt.where(Campaign.status == status) if status else stmt


def _started(session: Session, campaign: Campaign, now: datetime) -> bool:
    """Whether any delivery of a scheduled campaign is due or past the ledger's first step."""
    first = session.scalar(
        select(PushDelivery.id).where(
            PushDelivery.campaign_id == campaign.id,
            (PushDelivery.due_at <= now) | PushDelivery.status.not_in(("pending", "held_out", "suppressed")),
        ).limit(1))
    return first is not None


def update_campaign(session: Session, *, campaign_id: uuid.UUID, data: dict[str, Any]) -> Campaign:
    """Edit a draft, or a scheduled campaign before its first send (its ledger is rebuilt)."""
    campaign = get_campaign(session, campaign_id=campaign_id, for_update=True)
    now = utcnow()
    launched = campaign.status != "draft"
    if campaign.status not in EDITABLE or (launched and _started(session, campaign, now)):
        raise Conflict("Only drafts and scheduled campaigns that have not started can be edited.",
                       code="campaign_not_editable", details={"status": campaign.status})
    data = _serialise(data)
    merged = {**_as_fields(campaign, variants_of(session, campaign.id)), **data}
    validate_campaign(merged, now=now, launching=launched)
    for key, value in data.items():
        if key != "variants":
            setattr(campaign, key, value)
    if "variants" in data:
        _replace_variants(session, campaign, data["variants"])
    if launched and any(key in data for key in _TARGETING):
        # Targeting changed before the first send: rebuild the ledger from scratch.
        session.execute(delete(PushDelivery).where(PushDelivery.campaign_id == campaign.id))
        campaign.status = "scheduled"
        _enqueue_materialize(session, campaign)
    session.commit()
    return campaign


def _enqueue_materialize(session: Session, campaign: Campaign) -> None:
    job_id = f"materialize-{campaign.id}-{uuid.uuid4().hex[:8]}"
    enqueue_after_commit(session, MATERIALIZE_JOB, queue="push", job_id=job_id, campaign_id=str(campaign.id))


def launch_campaign(session: Session, *, campaign_id: uuid.UUID, schedule: dict[str, Any] | None = None) -> Campaign:
    """Schedule a draft (now / at / local); a second launch is ``campaign_already_launched``."""
    campaign = get_campaign(session, campaign_id=campaign_id, for_update=True)
    if campaign.status != "draft":
        raise Conflict("This campaign was already launched.", code="campaign_already_launched",
                       details={"status": campaign.status})
    now = utcnow()
    if schedule is not None:
        campaign.schedule = _serialise({"schedule": schedule})["schedule"]
    fields = _as_fields(campaign, variants_of(session, campaign.id))
    validate_campaign(fields, now=now, launching=True)
    if campaign.expires_at is not None:
        zones = distinct_zones(session, campaign.audience, now=now) or ["UTC"]
        first = min(due.due_at for due in sched.due_by_zone(campaign.schedule, zones, now=now).values())
        if campaign.expires_at <= max(first, now):
            raise _invalid("expiry_before_send", "expires_at must be after the first send.", "expires_at",
                           first_due_at=first.isoformat())
    campaign.status = "scheduled"
    campaign.launched_at = now
    _enqueue_materialize(session, campaign)
    session.commit()
    return campaign


def pause_campaign(session: Session, *, campaign_id: uuid.UUID, reason: str | None = None) -> Campaign:
    """Stop sending (rows stay pending); resumable."""
    campaign = get_campaign(session, campaign_id=campaign_id, for_update=True)
    if campaign.status not in ("scheduled", "running"):
        raise Conflict("Only scheduled or running campaigns can be paused.", code="campaign_not_pausable",
                       details={"status": campaign.status})
    campaign.status, campaign.paused_reason = "paused", reason or "paused by a marketer"
    session.commit()
    return campaign


def resume_campaign(session: Session, *, campaign_id: uuid.UUID) -> Campaign:
    """Carry on from the ledger: due rows go at once, future ones at their instants."""
    campaign = get_campaign(session, campaign_id=campaign_id, for_update=True)
    if campaign.status != "paused":
        raise Conflict("Only paused campaigns can be resumed.", code="campaign_not_paused",
                       details={"status": campaign.status})
    now = utcnow()
    instants = list(session.scalars(
        select(PushDelivery.next_attempt_at).where(
            PushDelivery.campaign_id == campaign.id, PushDelivery.status.in_(("pending", "deferred")),
        ).distinct()))
    materialized = session.scalar(
        select(PushDelivery.id).where(PushDelivery.campaign_id == campaign.id).limit(1)) is not None
    campaign.status, campaign.paused_reason = ("running" if materialized else "scheduled"), None
    if materialized:
        schedule_dispatch(session, campaign_id=campaign.id, due_instants=[max(at, now) for at in instants])
    else:
        _enqueue_materialize(session, campaign)
    session.commit()
    return campaign


def cancel_campaign(session: Session, *, campaign_id: uuid.UUID) -> Campaign:
    """Stop for good: waiting deliveries become ``cancelled`` (sent ones stay sent)."""
    campaign = get_campaign(session, campaign_id=campaign_id, for_update=True)
    if campaign.status in ("completed", "cancelled"):
        raise Conflict("This campaign has already ended.", code="campaign_ended", details={"status": campaign.status})
    session.execute(
        update(PushDelivery)
        .where(PushDelivery.campaign_id == campaign.id, PushDelivery.status.in_(("pending", "deferred")))
        .values(status="cancelled"))
    campaign.status, campaign.completed_at = "cancelled", utcnow()
    session.commit()
    return campaign
