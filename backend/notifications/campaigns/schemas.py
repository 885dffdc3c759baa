"""Marshmallow schemas of the campaigns API (shapes only; meaning is checked by the services)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from backend.common.pagination import PageQueryArgsSchema
from backend.notifications.campaigns.models import CAMPAIGN_STATUSES, CATEGORIES

_UPPER_KEY = validate.Regexp(r"^[A-Z][A-Z0-9_]{0,15}$", error="Use A-Z, 0-9 and _ (up to 16, starting with a letter).")
_HHMM = validate.Regexp(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", error="Use HH:MM (24 h).")
_MAX_TTL = 28 * 24 * 3600  # FCM keeps a message at most 4 weeks


class FiltersSchema(Schema):
    platforms = fields.List(fields.String(validate=validate.OneOf(("ios", "android", "web"))),
                            validate=validate.Length(max=3))
    locales = fields.List(fields.String(validate=validate.Length(min=2, max=35)), validate=validate.Length(max=100))
    app_version_min = fields.String(validate=validate.Length(max=32))
    app_version_max = fields.String(validate=validate.Length(max=32))
    last_active_within_days = fields.Integer(validate=validate.Range(min=1, max=3650))
    time_zones = fields.List(fields.String(validate=validate.Length(max=64)), validate=validate.Length(max=600))
    properties = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=64)),
                             values=fields.Raw(allow_none=False), validate=validate.Length(max=20))


class AudienceSchema(Schema):
    type = fields.String(load_default="all", validate=validate.OneOf(("all", "topic", "segment")))
    topic = fields.String(validate=validate.Length(min=1, max=64))
    filters = fields.Nested(FiltersSchema, load_default=dict)


class LocaleTextSchema(Schema):
    title = fields.String(validate=validate.Length(max=4000))
    body = fields.String(validate=validate.Length(max=4000))


class MessageSchema(Schema):
    default_locale = fields.String(load_default="en", validate=validate.Length(min=2, max=35))
    locales = fields.Dict(keys=fields.String(validate=validate.Length(min=2, max=35)),
                          values=fields.Nested(LocaleTextSchema), required=True,
                          validate=validate.Length(min=1, max=100))
    deep_link = fields.String(allow_none=True, validate=validate.Length(max=2000))
    image_url = fields.Url(allow_none=True, schemes={"https"}, validate=validate.Length(max=2000))
    data = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=100)),
                       values=fields.String(validate=validate.Length(max=4000)), load_default=dict)
    ttl_seconds = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=_MAX_TTL))
    priority = fields.String(load_default="high", validate=validate.OneOf(("high", "normal")))
    collapse_key = fields.String(allow_none=True, validate=validate.Length(max=64))
    silent = fields.Boolean(load_default=False)
    badge = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=99_999))


class MessageOverrideSchema(MessageSchema):
    """A variant's partial message: only what differs from the campaign's."""

    default_locale = fields.String(validate=validate.Length(min=2, max=35))
    locales = fields.Dict(keys=fields.String(validate=validate.Length(min=2, max=35)),
                          values=fields.Nested(LocaleTextSchema), validate=validate.Length(max=100))
    data = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=100)),
                       values=fields.String(validate=validate.Length(max=4000)))
    priority = fields.String(validate=validate.OneOf(("high", "normal")))
    silent = fields.Boolean()


class VariantSchema(Schema):
    key = fields.String(required=True, validate=_UPPER_KEY)
    weight = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))
    message_override = fields.Nested(MessageOverrideSchema, load_default=dict)


class ScheduleSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(("now", "at", "local")))
    send_at = fields.AwareDateTime(metadata={"description": "UTC instant (type=at)"})
    local_time = fields.String(validate=_HHMM, metadata={"description": "wall-clock HH:MM in each recipient's zone"})
    date = fields.Date(allow_none=True, metadata={"description": "local date (type=local); default: next occurrence"})
    fallback_zone = fields.String(load_default="UTC", validate=validate.Length(max=64))


class FrequencyCapSchema(Schema):
    max = fields.Integer(required=True, validate=validate.Range(min=1, max=1000))
    window_hours = fields.Integer(required=True, validate=validate.Range(min=1, max=24 * 90))


class CampaignCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    category = fields.String(load_default="promotional", validate=validate.OneOf(CATEGORIES))
    audience = fields.Nested(AudienceSchema, load_default=lambda: {"type": "all", "filters": {}})
    message = fields.Nested(MessageSchema, required=True)
    variants = fields.List(fields.Nested(VariantSchema), validate=validate.Length(min=1, max=10))
    holdout_percent = fields.Integer(load_default=0, validate=validate.Range(min=0, max=50))
    schedule = fields.Nested(ScheduleSchema, load_default=lambda: {"type": "now", "fallback_zone": "UTC"})
    throttle_per_minute = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=10_000_000))
    frequency_cap = fields.Nested(FrequencyCapSchema, allow_none=True)
    respect_quiet_hours = fields.Boolean(load_default=True)
    expires_at = fields.AwareDateTime(allow_none=True)


class CampaignUpdateSchema(CampaignCreateSchema):
    """PATCH: any subset of the creation fields."""

    name = fields.String(validate=validate.Length(min=1, max=200))
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    audience = fields.Nested(AudienceSchema)
    message = fields.Nested(MessageSchema)
    holdout_percent = fields.Integer(validate=validate.Range(min=0, max=50))
    schedule = fields.Nested(ScheduleSchema)
    respect_quiet_hours = fields.Boolean()


class VariantReadSchema(Schema):
    key = fields.String()
    weight = fields.Integer()
    message_override = fields.Dict()


class CampaignReadSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    status = fields.String()
    paused_reason = fields.String(allow_none=True)
    category = fields.String()
    audience = fields.Dict()
    message = fields.Dict()
    variants = fields.List(fields.Nested(VariantReadSchema))
    holdout_percent = fields.Integer()
    schedule = fields.Dict()
    throttle_per_minute = fields.Integer(allow_none=True)
    frequency_cap = fields.Dict(allow_none=True)
    respect_quiet_hours = fields.Boolean()
    expires_at = fields.DateTime(allow_none=True)
    created_by = fields.UUID(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    launched_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)


class CampaignQueryArgsSchema(PageQueryArgsSchema):
    status = fields.String(validate=validate.OneOf(CAMPAIGN_STATUSES))


class CampaignLaunchSchema(Schema):
    schedule = fields.Nested(ScheduleSchema, metadata={"description": "replaces the draft's schedule"})


class CampaignTestSendSchema(Schema):
    user_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=20))
    variant = fields.String(validate=_UPPER_KEY)


class TestSendResultSchema(Schema):
    user_id = fields.UUID()
    device_id = fields.UUID()
    locale = fields.String()
    title = fields.String()
    body = fields.String()
    outcome = fields.String()
    error_code = fields.String(allow_none=True)


class CampaignTestSendReadSchema(Schema):
    results = fields.List(fields.Nested(TestSendResultSchema))
    users_without_devices = fields.List(fields.UUID())


class DryRunReadSchema(Schema):
    total = fields.Dict(metadata={"description": "devices and users targeted (holdout included)"})
    suppressed = fields.Dict(metadata={"description": "opted out of the category"})
    by_time_zone = fields.List(fields.Dict())
    by_variant = fields.List(fields.Dict())
    by_locale = fields.List(fields.Dict())
    samples = fields.List(fields.Dict())


class StatsReadSchema(Schema):
    campaign_id = fields.UUID()
    status = fields.String()
    totals = fields.Dict()
    failed_by_reason = fields.Dict()
    by_variant = fields.List(fields.Dict())
    by_time_zone = fields.List(fields.Dict())
    ab_test = fields.Dict(allow_none=True)
