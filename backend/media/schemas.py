"""Request and response shapes of the media API."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from backend.common.pagination import PageQueryArgsSchema
from backend.media.delivery import delivery_of
from backend.media.models import KINDS, STATUSES, VISIBILITIES


class MediaCreateSchema(Schema):
    """Ask for an upload: what it is and how big (the bytes are judged again after upload)."""

    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    content_type = fields.String(required=True, validate=validate.Length(min=3, max=100),
                                 metadata={"description": "declared type; checked against the bytes later"})
    size = fields.Integer(required=True, validate=validate.Range(min=1),
                          metadata={"description": "exact size in bytes"})
    checksum_sha256 = fields.String(load_default=None, validate=validate.Regexp(r"^[0-9a-fA-F]{64}$"),
                                    metadata={"description": "hex SHA-256 of the file, checked before processing"})
    filename = fields.String(load_default=None, validate=validate.Length(max=1000),
                             metadata={"description": "original name (kept for downloads, never used as a key)"})
    multipart = fields.Boolean(load_default=None, allow_none=True,
                               metadata={"description": "force a multipart upload (default: above the threshold)"})


class MediaQueryArgsSchema(PageQueryArgsSchema):
    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS))
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))


class UploadQueryArgsSchema(Schema):
    part_numbers = fields.List(fields.Integer(), load_default=None,
                               metadata={"description": "fresh URLs for these parts only (default: the missing ones)"})


class VariantReadSchema(Schema):
    content_type = fields.String()
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)
    bytes = fields.Integer(allow_none=True)


class DeliveredVariantSchema(Schema):
    url = fields.String()
    content_type = fields.String(allow_none=True)
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)


class DeliveryReadSchema(Schema):
    """Short-lived signed URLs, one per object."""

    expires_at = fields.DateTime()
    variants = fields.Dict(keys=fields.String(), values=fields.Nested(DeliveredVariantSchema))
    original = fields.String(allow_none=True, metadata={"description": "the upload itself (owner only, as a download)"})


class MediaUpdateSchema(Schema):
    visibility = fields.String(required=True, validate=validate.OneOf(VISIBILITIES),
                               metadata={"description": "private (default) or users: any signed-in user may view"})


class MediaReadSchema(Schema):
    """A media item of the caller."""

    id = fields.UUID()
    kind = fields.String()
    status = fields.String(metadata={"description": "uploading, pending, processing, ready, failed, aborted, expired"})
    progress = fields.Integer(metadata={"description": "processing progress in percent"})
    failure_reason = fields.String(allow_none=True)
    visibility = fields.String()
    quarantined = fields.Function(lambda m: m.moderation == "quarantined")
    removed = fields.Function(lambda m: m.moderation == "removed")
    content_type = fields.Function(lambda m: m.detected_type or m.declared_type)
    size_bytes = fields.Integer()
    filename = fields.String(allow_none=True)
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)
    duration_s = fields.Float(allow_none=True)
    placeholder = fields.String(allow_none=True, metadata={"description": "blurhash to paint before the image loads"})
    variants = fields.Function(lambda m: {name: {k: v.get(k) for k in ("content_type", "width", "height", "bytes")}
                                          for name, v in (m.variants or {}).items()})
    delivery = fields.Method("_delivery", metadata={
        "description": "signed URLs (as from GET /delivery) when ready and not held by moderation, else null"})
    created_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)
    ready_at = fields.DateTime(allow_none=True)

    def _delivery(self, media: Any) -> dict[str, Any] | None:
        found = delivery_of(media, for_owner=True)
        return DeliveryReadSchema().dump(found) if found else None


class PresignedRequestSchema(Schema):
    url = fields.String()
    method = fields.String()
    headers = fields.Dict(keys=fields.String(), values=fields.String())


class PartReadSchema(PresignedRequestSchema):
    part_number = fields.Integer()
    size = fields.Integer()


class StoredPartReadSchema(Schema):
    part_number = fields.Integer()
    size = fields.Integer()


class UploadReadSchema(Schema):
    """Where to send the bytes: one PUT, or the parts of a multipart upload."""

    multipart = fields.Boolean()
    uploaded = fields.Boolean(metadata={"description": "every byte is stored: complete the upload"})
    expires_at = fields.DateTime()
    request = fields.Nested(PresignedRequestSchema, metadata={"description": "single PUT"})
    part_size = fields.Integer()
    parts = fields.List(fields.Nested(PartReadSchema), metadata={"description": "parts still to send"})
    stored_parts = fields.List(fields.Nested(StoredPartReadSchema))


class MediaUploadReadSchema(Schema):
    media = fields.Nested(MediaReadSchema)
    upload = fields.Nested(UploadReadSchema)
