"""What a campaign sends each recipient: the rendered push, and one inbox entry per user.

Split from the delivery engine (claiming, sending and recording); nothing here talks to FCM.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.notifications.campaigns.models import Campaign, CampaignVariant
from backend.notifications.campaigns.templating import merged_message, personal_context, render_for
from backend.notifications.fcm.providers import OutgoingPush


class SentRow(Protocol):
    """A ledger row whose push was accepted: who got it, and what."""

    user_id: uuid.UUID
    push: OutgoingPush


def add_inbox_entries(session: Session, campaign: Campaign, sent: Sequence[SentRow],
                       at: datetime) -> list[tuple[uuid.UUID, dict[str, Any]]]:
    """One inbox entry per user and campaign, however many of the user's devices got the push."""
    first: dict[uuid.UUID, SentRow] = {}
    for row in sent:
        first.setdefault(row.user_id, row)
    users = [str(u) for u in first]
    # Two lanes may hold two devices of one user: serialise on (campaign, user), then check.
    session.execute(
        text("SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT hashtextextended(:c || u, 0) AS k "
             "FROM unnest(CAST(:users AS text[])) u ORDER BY k) s"),
        {"c": f"gw-inbox:{campaign.id}:", "users": sorted(users)})
    # One index probe per user (campaign_id, user_id): filtering the campaign's entries by
    # user would read every entry the campaign wrote so far, batch after batch.
    have = set(session.scalars(
        text("SELECT u.id FROM unnest(CAST(:users AS uuid[])) AS u(id) CROSS JOIN LATERAL "
             "(SELECT 1 FROM notifications n WHERE n.campaign_id = :c AND n.user_id = u.id LIMIT 1) entry"),
        {"c": campaign.id, "users": users}))
    fresh = [row for user_id, row in first.items() if user_id not in have]
    if not fresh:
        return []
    # One INSERT for the batch (an ORM object per entry costs more than the push itself).
    ids = [uuid.uuid4() for _ in fresh]
    pushes = [r.push for r in fresh]
    shown: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], str]] = {}  # a batch has few data shapes
    shapes = [tuple(push.data.items()) for push in pushes]
    for push, shape in zip(pushes, shapes, strict=True):
        if shape not in shown:
            data = _inbox_data(push)
            shown[shape] = (data, json.dumps(data))
    columns: dict[str, list[Any]] = {
        "ids": [str(i) for i in ids], "users": [str(r.user_id) for r in fresh],
        "titles": [p.title for p in pushes], "bodies": [p.body for p in pushes],
        "data": [shown[shape][1] for shape in shapes], "variants": [p.data.get("variant") for p in pushes],
        "links": [p.deep_link for p in pushes], "images": [p.image for p in pushes],
        "priorities": [p.priority for p in pushes], "ttls": [p.ttl_seconds for p in pushes],
        "collapses": [p.collapse_key for p in pushes], "silents": [p.silent for p in pushes],
        "badges": [p.badge for p in pushes],
    }
    session.execute(text(
        "INSERT INTO notifications (id, user_id, category, title, body, data, deep_link, image_url, campaign_id, "
        "variant, priority, ttl_seconds, collapse_key, silent, badge, created_at) "
        "SELECT v.id, v.user_id, :category, v.title, v.body, CAST(v.data AS jsonb), v.link, v.image, :campaign, "
        "v.variant, v.priority, v.ttl, v.collapse, v.silent, v.badge, :at "
        "FROM unnest(CAST(:ids AS uuid[]), CAST(:users AS uuid[]), CAST(:titles AS text[]), CAST(:bodies AS text[]), "
        "CAST(:data AS text[]), CAST(:variants AS text[]), CAST(:links AS text[]), CAST(:images AS text[]), "
        "CAST(:priorities AS text[]), CAST(:ttls AS int[]), CAST(:collapses AS text[]), CAST(:silents AS boolean[]), "
        "CAST(:badges AS int[])) AS v(id, user_id, title, body, data, variant, link, image, priority, ttl, collapse, "
        "silent, badge)"),
        {**columns, "category": campaign.category, "campaign": campaign.id, "at": at})
    # Read the campaign's (ORM-instrumented) attributes once, not once per entry.
    category, campaign_id, created_at = campaign.category, str(campaign.id), at.isoformat()
    return [(row.user_id, {
        "id": entry_id, "category": category, "title": row.push.title, "body": row.push.body,
        "data": shown[shape][0], "deep_link": row.push.deep_link, "image_url": row.push.image,
        "campaign_id": campaign_id, "created_at": created_at, "read_at": None, "opened_at": None,
    }) for entry_id, row, shape in zip(columns["ids"], fresh, shapes, strict=True)]


def _inbox_data(push: OutgoingPush) -> dict[str, str]:
    # The inbox shows the app's own data; the campaign/variant keys live in their own columns.
    return {k: v for k, v in push.data.items() if k not in ("campaign_id", "variant")}


class Composer:
    """Builds each recipient's push from the campaign message, its variant and locale.

    Without personalisation the rendered title/body are shared per (variant, locale),
    so a 100k fan-out renders a handful of templates, not 100k.
    """

    def __init__(self, campaign: Campaign, variants: Iterable[CampaignVariant]) -> None:
        self.campaign_id = str(campaign.id)
        self.label = f"campaign-{campaign.id.hex}"
        self.collapse_id = campaign.id.hex  # a resend to a device replaces the first copy
        self.base = campaign.message or {}
        self.overrides = {v.key: v.message_override or {} for v in variants}
        self.personal = any(
            "{{" in part or "{%" in part
            for message in (self.base, *self.overrides.values())
            for texts in (message.get("locales") or {}).values()
            for part in (str(texts.get("title", "")), str(texts.get("body", ""))))
        self._messages: dict[str, dict[str, Any]] = {}
        self._texts: dict[tuple[str, str], tuple[str, str]] = {}
        self._shared: dict[str, dict[str, Any]] = {}

    def message(self, variant: str) -> dict[str, Any]:
        """The campaign message with ``variant``'s override applied."""
        if variant not in self._messages:
            self._messages[variant] = merged_message(self.base, self.overrides.get(variant))
        return self._messages[variant]

    def push(self, *, key: str, token: str, variant: str, locale: str, zone: str, first_name: str | None,
             display_name: str | None, properties: dict[str, Any] | None) -> OutgoingPush:
        """The push for one device."""
        message = self.message(variant)
        if self.personal:
            context = personal_context(first_name=first_name, display_name=display_name, locale=locale,
                                       time_zone=zone, properties=properties)
            rendered = render_for(message, locale=locale, context=context)
            title, body = rendered.title, rendered.body
        else:
            cached = self._texts.get((variant, locale))
            if cached is None:
                rendered = render_for(message, locale=locale, context={})
                cached = self._texts[(variant, locale)] = (rendered.title, rendered.body)
            title, body = cached
        shared = self._shared.get(variant)
        if shared is None:
            # One data mapping per variant, shared read-only by its pushes (nothing mutates a push's data).
            data = {str(k): str(v) for k, v in (message.get("data") or {}).items()}
            data.update(campaign_id=self.campaign_id, variant=variant)
            priority = message.get("priority") if message.get("priority") in ("high", "normal") else "high"
            shared = self._shared[variant] = dict(
                image=message.get("image_url"), data=data, deep_link=message.get("deep_link"),
                ttl_seconds=message.get("ttl_seconds"), priority=priority, collapse_key=message.get("collapse_key"),
                silent=bool(message.get("silent")), badge=message.get("badge"), analytics_label=self.label,
                collapse_id=self.collapse_id)
        return OutgoingPush(key=key, token=token, title=title or None, body=body or None, **shared)
