"""Request and response shapes of the analytics API."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from backend.analytics.batches import PLATFORMS

INSTALL_ID = r"^[A-Za-z0-9._:-]{8,128}$"  # the same alphabet as a push device's installation_id


EVENT_SHAPE = ("events, each {event_id (client UUID, the same on retry), name (1-200 characters), timestamp "
               "(ISO 8601 with offset), properties (object), session_id, platform, app_version}")


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
                                validate=[validate.Length(min=1, max=64), validate.Regexp(r"^[^\x00-\x1f\x7f]+$")])
    user_properties = fields.Nested(UserPropertiesSchema, load_default=None, allow_none=True)
    # Items stay raw here: each is checked on its own so one bad event refuses only itself.
    events = fields.List(fields.Raw(metadata={"description": "an event"}), required=True,
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
