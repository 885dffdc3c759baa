"""Request and response shapes of the analytics API."""
from __future__ import annotations

from marshmallow import Schema, fields, utils, validate

from backend.analytics.batches import PLATFORMS

INSTALL_ID = r"^[A-Za-z0-9._:-]{8,128}$"  # the same alphabet as a push device's installation_id
# No control characters and no final newline. Python's "$" lets one through and "\Z" is not
# ECMA-262, which the OpenAPI document's patterns must be: "$(?!\n)" means the same in both.
APP_VERSION = r"^[^\x00-\x1f\x7f]+$(?!\n)"


EVENT_SHAPE = ("events, each {event_id (client UUID, the same on retry), name (1-200 characters), timestamp "
               "(ISO 8601 with offset), properties (object), session_id, platform, app_version}")


class RawItems(fields.List):
    """A list whose items are kept as sent (each event is checked on its own later), without a per-item pass."""

    def _deserialize(self, value, attr, data, **kwargs):  # noqa: ANN001, ANN202 - marshmallow's signature
        if not utils.is_collection(value):
            raise self.make_error("invalid")
        return list(value)


class UserPropertiesSchema(Schema):
    """Properties of the person the batch is about."""

    set = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=200)), load_default=dict,
                      metadata={"description": "overwrite these properties"})
    set_once = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=200)), load_default=dict,
                           metadata={"description": "set these only where the person has no value yet"})


class EventBatchCreateSchema(Schema):
    """A batch of events from one install."""

    install_id = fields.String(required=True, validate=validate.Regexp(INSTALL_ID),
                               metadata={"description": "stable id of this app install (8-128 of A-Z a-z 0-9 . _ : -)"})
    sent_at = fields.AwareDateTime(load_default=None, allow_none=True,
                                   metadata={"description": "client clock when sending: corrects clock skew"})
    platform = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(PLATFORMS))
    app_version = fields.String(load_default=None, allow_none=True,
                                validate=[validate.Length(min=1, max=64), validate.Regexp(APP_VERSION)])
    user_properties = fields.Nested(UserPropertiesSchema, load_default=None, allow_none=True)
    # Items stay raw here: each is checked on its own so one bad event refuses only itself.
    events = RawItems(fields.Raw(metadata={"description": "an event"}), required=True,
                         validate=validate.Length(min=1),
                         metadata={"description": EVENT_SHAPE})


REFUSAL_CODES = ("invalid_event, invalid_event_id, invalid_name, invalid_timestamp, invalid_properties, "
                 "properties_too_large, invalid_platform, invalid_session_id, invalid_app_version, "
                 "duplicate_in_batch, too_old")


class RejectedEventSchema(Schema):
    index = fields.Integer(metadata={"description": "position in the batch"})
    event_id = fields.String(allow_none=True)
    code = fields.String(metadata={"description": REFUSAL_CODES})
    message = fields.String()


class IngestReadSchema(Schema):
    """The outcome: every accepted event is already committed."""

    accepted = fields.Integer(metadata={"description": "events stored by this request"})
    duplicates = fields.Integer(metadata={"description": "valid events already stored by an earlier request"})
    rejected = fields.List(fields.Nested(RejectedEventSchema))
    clamped = fields.List(fields.Integer(), metadata={"description": "indexes of events placed in the future, "
                                                                      "stored at the receive time"})


FORMATS = ("json", "csv")


class RangeQueryArgsSchema(Schema):
    """A range of UTC days (both inclusive) and the answer's format."""

    start = fields.Date(required=True, data_key="from", metadata={"description": "first day (UTC), YYYY-MM-DD"})
    end = fields.Date(required=True, data_key="to", metadata={"description": "last day (UTC), inclusive"})
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS),
                           metadata={"description": "json, or csv for a download"})


class ActivesQueryArgsSchema(RangeQueryArgsSchema):
    interval = fields.String(load_default="day", validate=validate.OneOf(("day", "week", "month")))
    platform = fields.String(load_default=None, validate=validate.OneOf(PLATFORMS))


class RetentionQueryArgsSchema(RangeQueryArgsSchema):
    interval = fields.String(load_default="day", validate=validate.OneOf(("day", "week")))
    offsets = fields.Integer(load_default=7, validate=validate.Range(min=1, max=90),
                             metadata={"description": "periods followed after the first"})
    mode = fields.String(load_default="n_day", validate=validate.OneOf(("n_day", "unbounded")),
                         metadata={"description": "n_day: active in period k; unbounded: in k or later"})


class EventCountsQueryArgsSchema(RangeQueryArgsSchema):
    interval = fields.String(load_default="day", validate=validate.OneOf(("day", "week", "month")))
    names = fields.List(fields.String(validate=validate.Length(min=1, max=200)), load_default=None,
                        validate=validate.Length(min=1, max=20), metadata={"description": "repeat for several"})
    breakdown = fields.String(load_default=None, validate=validate.Length(min=1, max=200),
                              metadata={"description": "a property key to split counts by"})


class FunnelStepSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    where = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=200)), load_default=dict,
                        metadata={"description": "only events whose properties contain these"})


class FunnelCreateSchema(Schema):
    """A funnel to compute."""

    steps = fields.List(fields.Nested(FunnelStepSchema), required=True, validate=validate.Length(min=2, max=10))
    start = fields.Date(required=True, data_key="from")
    end = fields.Date(required=True, data_key="to")
    window_s = fields.Integer(load_default=86400, validate=validate.Range(min=1, max=90 * 86400),
                             metadata={"description": "conversion window from entering the funnel"})
    breakdown = fields.String(load_default=None,
                              validate=validate.Regexp(r"^(platform|app_version|property:.{1,200})$"),
                              metadata={"description": "platform, app_version or property:<key>"})


class FormatQueryArgsSchema(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))


class SeriesPointSchema(Schema):
    period = fields.Date()
    actives = fields.Integer()


class ActivesReadSchema(Schema):
    interval = fields.String()
    series = fields.List(fields.Nested(SeriesPointSchema))


class CohortSchema(Schema):
    cohort = fields.Date()
    size = fields.Integer()
    retained = fields.List(fields.Integer())
    rates = fields.List(fields.Float())


class RetentionReadSchema(Schema):
    interval = fields.String()
    mode = fields.String()
    offsets = fields.Integer()
    cohorts = fields.List(fields.Nested(CohortSchema))


class FunnelStepCountSchema(Schema):
    name = fields.String()
    persons = fields.Integer()
    conversion = fields.Float(metadata={"description": "share of those entering"})
    from_previous = fields.Float(metadata={"description": "share of the previous step"})
    dropped = fields.Integer(metadata={"description": "lost since the previous step"})


class FunnelGroupSchema(Schema):
    value = fields.String(allow_none=True)
    steps = fields.List(fields.Nested(FunnelStepCountSchema))


class FunnelReadSchema(Schema):
    breakdown = fields.String(allow_none=True)
    groups = fields.List(fields.Nested(FunnelGroupSchema))


class EventCountSchema(Schema):
    period = fields.Date()
    name = fields.String()
    value = fields.String(allow_none=True)
    count = fields.Integer()


class EventCountsReadSchema(Schema):
    interval = fields.String()
    breakdown = fields.String(allow_none=True)
    rows = fields.List(fields.Nested(EventCountSchema))


class AttributionQueryArgsSchema(Schema):
    event = fields.String(load_default=None, validate=validate.Length(min=1, max=200),
                          metadata={"description": "the conversion event's name (required)"})
    window_s = fields.Integer(load_default=86400, validate=validate.Range(min=1, max=90 * 86400),
                              metadata={"description": "conversion window after the open or the delivery"})
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))


class AttributionVariantSchema(Schema):
    variant = fields.String(metadata={"description": "variant key, or holdout"})
    recipients = fields.Integer(metadata={"description": "delivered, or held out"})
    delivered = fields.Integer()
    opened = fields.Integer()
    converted_after_open = fields.Integer()
    converted_after_delivery = fields.Integer(metadata={"description": "for the holdout: after the would-be send"})
    open_rate = fields.Float(allow_none=True)
    conversion_rate = fields.Float(allow_none=True, metadata={"description": "converted_after_delivery / recipients"})
    lift = fields.Float(allow_none=True, metadata={"description": "conversion_rate / holdout's - 1"})


class AttributionReadSchema(Schema):
    campaign_id = fields.UUID()
    event = fields.String()
    window_s = fields.Integer()
    variants = fields.List(fields.Nested(AttributionVariantSchema))
