"""The campaign builder's HTML form ⇄ the campaigns API's fields.

Parsed form values are validated by the API's own marshmallow schemas, then by the
campaign services: the console accepts exactly what ``/v1/campaigns`` accepts.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from backend.notifications.campaigns.schemas import (
    AudienceSchema,
    CampaignCreateSchema,
    CampaignUpdateSchema,
    ScheduleSchema,
)

LOCALE_ROWS = 4
VARIANT_ROWS = 3


def _csv(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def _property_value(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            continue
    return raw


def audience_from(form: MultiDict) -> dict[str, Any]:
    """The audience part of the form (also sent alone by the live estimate)."""
    kind = form.get("audience_type", "all")
    filters: dict[str, Any] = {}
    if kind == "segment":
        if form.getlist("platforms"):
            filters["platforms"] = form.getlist("platforms")
        for key in ("locales", "time_zones"):
            if _csv(form.get(f"filter_{key}")):
                filters[key] = _csv(form.get(f"filter_{key}"))
        if form.get("last_active_within_days"):
            filters["last_active_within_days"] = form.get("last_active_within_days")
        for key in ("app_version_min", "app_version_max"):
            if form.get(key):
                filters[key] = form[key].strip()
        properties = {}
        for line in (form.get("properties") or "").splitlines():
            if "=" in line:
                key, _, value = line.partition("=")
                properties[key.strip()] = _property_value(value.strip())
        if properties:
            filters["properties"] = properties
    audience: dict[str, Any] = {"type": kind, "filters": filters}
    if kind == "topic":
        audience["topic"] = (form.get("topic") or "").strip()
    return audience


def load_audience(form: MultiDict) -> dict[str, Any]:
    """The audience, validated by the API's schema (raises marshmallow's ValidationError)."""
    return AudienceSchema().load(audience_from(form))


def campaign_from(form: MultiDict, *, partial: bool = False) -> dict[str, Any]:
    """Draft fields from the builder form, validated like a POST/PATCH of the API."""
    locales = {}
    for i in range(LOCALE_ROWS):
        code = (form.get(f"locale_{i}") or "").strip()
        if code:
            locales[code] = {"title": form.get(f"title_{i}", ""), "body": form.get(f"body_{i}", "")}
    default_locale = (form.get("default_locale") or "").strip() or next(iter(locales), "en")
    message: dict[str, Any] = {"default_locale": default_locale, "locales": locales,
                               "deep_link": (form.get("deep_link") or "").strip() or None,
                               "image_url": (form.get("image_url") or "").strip() or None}
    variants = []
    for i in range(VARIANT_ROWS):
        key = (form.get(f"variant_key_{i}") or "").strip().upper()
        if not key:
            continue
        override: dict[str, Any] = {}
        title, body = form.get(f"variant_title_{i}", "").strip(), form.get(f"variant_body_{i}", "").strip()
        if title or body:
            base = locales.get(default_locale, {})
            override["locales"] = {default_locale: {"title": title or base.get("title", ""),
                                                    "body": body or base.get("body", "")}}
        variants.append({"key": key, "weight": form.get(f"variant_weight_{i}") or 1, "message_override": override})
    data: dict[str, Any] = {
        "name": (form.get("name") or "").strip(), "category": form.get("category") or "promotional",
        "audience": audience_from(form), "message": message,
        "holdout_percent": form.get("holdout_percent") or 0,
        "respect_quiet_hours": form.get("respect_quiet_hours") == "on",
    }
    if variants:
        data["variants"] = variants
    schema = CampaignUpdateSchema() if partial else CampaignCreateSchema()
    return schema.load(data)


def schedule_from(form: MultiDict) -> dict[str, Any]:
    """now / at a UTC instant / at a local wall-clock time in each recipient's zone."""
    kind = form.get("schedule_type", "now")
    schedule: dict[str, Any] = {"type": kind, "fallback_zone": (form.get("fallback_zone") or "UTC").strip()}
    if kind == "at" and form.get("send_at"):
        try:
            instant = datetime.fromisoformat(form["send_at"])
        except ValueError as exc:
            raise ValidationError({"send_at": ["Use YYYY-MM-DDTHH:MM (UTC)."]}) from exc
        schedule["send_at"] = (instant if instant.tzinfo else instant.replace(tzinfo=UTC)).isoformat()
    if kind == "local":
        schedule["local_time"] = (form.get("local_time") or "").strip()
        if form.get("date"):
            schedule["date"] = form["date"]
    return ScheduleSchema().load(schedule)


def form_values(campaign: Any, variants: list[Any]) -> dict[str, Any]:
    """A saved campaign as the builder form's values (for editing a draft)."""
    message, audience = campaign.message, campaign.audience
    filters = audience.get("filters") or {}
    values: dict[str, Any] = {
        "name": campaign.name, "category": campaign.category, "default_locale": message.get("default_locale", "en"),
        "deep_link": message.get("deep_link") or "", "image_url": message.get("image_url") or "",
        "audience_type": audience.get("type", "all"), "topic": audience.get("topic", ""),
        "platforms": filters.get("platforms", []), "filter_locales": ", ".join(filters.get("locales", [])),
        "filter_time_zones": ", ".join(filters.get("time_zones", [])),
        "last_active_within_days": filters.get("last_active_within_days", ""),
        "app_version_min": filters.get("app_version_min", ""), "app_version_max": filters.get("app_version_max", ""),
        "properties": "\n".join(f"{k}={v}" for k, v in (filters.get("properties") or {}).items()),
        "holdout_percent": campaign.holdout_percent, "respect_quiet_hours": campaign.respect_quiet_hours,
    }
    for i, (code, text) in enumerate(sorted(message.get("locales", {}).items())[:LOCALE_ROWS]):
        values.update({f"locale_{i}": code, f"title_{i}": text.get("title", ""), f"body_{i}": text.get("body", "")})
    for i, variant in enumerate(variants[:VARIANT_ROWS]):
        override = (variant.message_override.get("locales") or {}).get(values["default_locale"], {})
        values.update({f"variant_key_{i}": variant.key, f"variant_weight_{i}": variant.weight,
                       f"variant_title_{i}": override.get("title", ""), f"variant_body_{i}": override.get("body", "")})
    return values


def errors_text(exc: ValidationError) -> list[str]:
    """Marshmallow's nested messages as readable lines."""
    lines: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list):
            for item in value:
                walk(prefix, item)
        else:
            lines.append(f"{prefix}: {value}")

    walk("", exc.messages)
    return lines
