"""Request and response shapes of webhook endpoints and their delivery log."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from backend.common.pagination import PageQueryArgsSchema
from backend.webhooks.events import EVENT_TYPES
from backend.webhooks.models import DELIVERY_STATUSES

EVENT_TYPE = fields.String(validate=validate.OneOf(sorted(EVENT_TYPES)))


class EndpointCreateSchema(Schema):
    url = fields.Url(required=True, schemes={"http", "https"}, validate=validate.Length(max=2000))
    event_types = fields.List(EVENT_TYPE, load_default=list,
                              metadata={"description": "types to receive (empty: every type)"})
    description = fields.String(load_default=None, validate=validate.Length(max=200))


class EndpointUpdateSchema(Schema):
    url = fields.Url(schemes={"http", "https"}, validate=validate.Length(max=2000))
    event_types = fields.List(EVENT_TYPE)
    description = fields.String(allow_none=True, validate=validate.Length(max=200))
    enabled = fields.Boolean()


class EndpointReadSchema(Schema):
    id = fields.UUID()
    url = fields.String()
    description = fields.String(allow_none=True)
    event_types = fields.List(fields.String())
    enabled = fields.Boolean()
    created_at = fields.DateTime()


class EndpointSecretReadSchema(EndpointReadSchema):
    """The endpoint with its signing secret: shown at creation and on rotation only."""

    secret = fields.String(metadata={"description": "whsec_...: verify webhook-signature with it"})


class WebhookDeliveryQueryArgsSchema(PageQueryArgsSchema):
    endpoint_id = fields.UUID(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(DELIVERY_STATUSES))


class WebhookDeliveryReadSchema(Schema):
    id = fields.UUID()
    event_id = fields.UUID()
    status = fields.String()
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
