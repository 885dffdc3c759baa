"""Request and response shapes of the push API."""
from __future__ import annotations

import json
import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from backend.common.pagination import PageQueryArgsSchema
from backend.notifications.models import CATEGORIES, PRIORITIES

PLATFORMS = ("ios", "android", "web")
PERMISSIONS = ("granted", "denied", "provisional", "not_determined")
INSTALLATION_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
MAX_DATA_BYTES = 3072  # FCM allows 4 KB for data; leave room for the ids Groundwork adds
MAX_TTL_S = 28 * 24 * 3600  # FCM's longest TTL
RESERVED_DATA_KEYS = {"from", "message_type", "notification_id", "category", "deep_link"}


class DeviceUpdateSchema(Schema):
    """What an app reports on every open."""

    token = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=4096),
                          metadata={"description": "FCM registration token (null: no token yet / push off)"})
    platform = fields.String(required=True, validate=validate.OneOf(PLATFORMS))
    app_version = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))
    locale = fields.String(load_default=None, allow_none=True,
                           validate=validate.Regexp(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$"))
    time_zone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64),
                              metadata={"description": "IANA zone, e.g. Europe/Paris"})
    push_permission = fields.String(load_default="granted", validate=validate.OneOf(PERMISSIONS))


class DeviceReadSchema(Schema):
    """A device of the caller (its token is never echoed back)."""

    installation_id = fields.String()
    platform = fields.String()
    app_version = fields.String(allow_none=True)
    locale = fields.String()
    time_zone = fields.String()
    push_permission = fields.String()
    has_token = fields.Function(lambda d: d.token is not None)
    push_enabled = fields.Function(lambda d: d.token is not None and d.disabled_at is None
                                   and d.push_permission != "denied")
    disabled_reason = fields.String(allow_none=True)
    last_seen_at = fields.DateTime()
    created_at = fields.DateTime()


class PreferencesUpdateSchema(Schema):
    """Categories to switch, and the quiet window (omit to keep, null start/end to clear)."""

    categories = fields.Dict(keys=fields.String(validate=validate.OneOf(CATEGORIES)), values=fields.Boolean())
    quiet_hours = fields.Nested(lambda: QuietHoursSchema(), allow_none=True)

    @validates_schema
    def _something(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ValidationError("Give categories and/or quiet_hours.", "_schema")


class QuietHoursSchema(Schema):
    """Local start and end (HH:MM); end before start wraps midnight, e.g. 22:00–07:00."""

    start = fields.Time(required=True, allow_none=True, format="%H:%M")
    end = fields.Time(required=True, allow_none=True, format="%H:%M")
    time_zone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64),
                              metadata={"description": "IANA zone; null follows the user's device"})


class PreferencesReadSchema(Schema):
    categories = fields.Dict(keys=fields.String(), values=fields.Boolean())
    quiet_hours = fields.Nested(QuietHoursSchema, allow_none=True)


class TopicReadSchema(Schema):
    name = fields.String(attribute="topic.name")
    subscribed_at = fields.DateTime(attribute="created_at")


class NotificationReadSchema(Schema):
    """One inbox entry."""

    id = fields.UUID()
    category = fields.String()
    title = fields.String(allow_none=True)
    body = fields.String(allow_none=True)
    data = fields.Dict()
    deep_link = fields.String(allow_none=True)
    image_url = fields.String(allow_none=True)
    campaign_id = fields.UUID(allow_none=True)
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)
    opened_at = fields.DateTime(allow_none=True)


class NotificationQueryArgsSchema(PageQueryArgsSchema):
    unread = fields.Boolean(load_default=False, metadata={"description": "only entries not read yet"})


class UnreadCountReadSchema(Schema):
    unread = fields.Integer()


class MarkedReadSchema(Schema):
    marked = fields.Integer()


class NotificationSendCreateSchema(Schema):
    """A transactional push to one user or to every follower of a topic."""

    user_id = fields.UUID(load_default=None)
    topic = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    category = fields.String(load_default="transactional", validate=validate.OneOf(CATEGORIES))
    title = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    body = fields.String(load_default=None, validate=validate.Length(min=1, max=2000))
    data = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=64)),
                       values=fields.String(validate=validate.Length(max=2048)), load_default=dict,
                       metadata={"description": "string values only (FCM's rule)"})
    deep_link = fields.String(load_default=None, validate=[validate.Length(max=2000),
                                                           validate.Regexp(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$")])
    image_url = fields.Url(load_default=None, schemes={"https"}, validate=validate.Length(max=2000))
    ttl_seconds = fields.Integer(load_default=None, validate=validate.Range(min=0, max=MAX_TTL_S))
    priority = fields.String(load_default="high", validate=validate.OneOf(PRIORITIES))
    collapse_key = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    silent = fields.Boolean(load_default=False, metadata={"description": "data-only push, nothing displayed"})
    badge = fields.Integer(load_default=None, validate=validate.Range(min=0, max=99999))

    @validates("data")
    def _data_keys(self, value: dict[str, str], **_: Any) -> None:
        reserved = sorted(k for k in value if k in RESERVED_DATA_KEYS or k.startswith(("google", "gcm")))
        if reserved:
            raise ValidationError(f"Reserved keys: {', '.join(reserved)}.")
        if len(json.dumps(value).encode()) > MAX_DATA_BYTES:
            raise ValidationError(f"At most {MAX_DATA_BYTES} bytes of data.")

    @validates_schema
    def _target_and_content(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("user_id") is None) == (data.get("topic") is None):
            raise ValidationError("Give exactly one of user_id or topic.", "_schema")
        if not data.get("silent") and not (data.get("title") or data.get("body")):
            raise ValidationError("A visible push needs a title or a body (or set silent).", "_schema")
        if data.get("silent") and not data.get("data"):
            raise ValidationError("A silent push needs data.", "_schema")


class NotificationSendReadSchema(Schema):
    """What happened to the send."""

    status = fields.String(metadata={"description": "queued, deferred (quiet hours) or suppressed"})
    recipients = fields.Integer()
    queued = fields.Integer()
    deferred = fields.Integer()
    suppressed = fields.Integer()
    notification_ids = fields.List(fields.UUID())
    deliver_at = fields.DateTime(allow_none=True)


class StreamTicketReadSchema(Schema):
    ticket = fields.String(required=True, metadata={"description": "single use; put it in the stream URL's query"})
    expires_in = fields.Integer(required=True, metadata={"description": "seconds the ticket can still open a stream"})
    stream_url = fields.String(required=True, metadata={
        "description": "the path to open with EventSource (add `&last_event_id=` to resume)"})
