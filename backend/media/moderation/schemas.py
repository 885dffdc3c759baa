"""Request and response shapes of reports and the moderation queue."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from backend.common.pagination import PageQueryArgsSchema
from backend.media.moderation.models import CASE_STATUSES, DECISIONS, REASONS, TARGETS

NOTE = validate.Length(min=1, max=2000)


class ReportCreateSchema(Schema):
    reason = fields.String(required=True, validate=validate.OneOf(REASONS))
    note = fields.String(load_default=None, validate=validate.Length(max=2000),
                         metadata={"description": "what the reporter wants moderators to know"})


class ReportReadSchema(Schema):
    """A report as its reporter sees it (nothing of the case or of other reporters)."""

    id = fields.UUID()
    reason = fields.String()
    note = fields.String(allow_none=True)
    created_at = fields.DateTime()


class StaffReportReadSchema(ReportReadSchema):
    reporter_id = fields.UUID()


class CaseQueryArgsSchema(PageQueryArgsSchema):
    status = fields.String(load_default="open", validate=validate.OneOf(CASE_STATUSES))
    target_type = fields.String(load_default=None, validate=validate.OneOf(TARGETS))


class CaseReadSchema(Schema):
    id = fields.UUID()
    target_type = fields.String()
    target_id = fields.UUID()
    subject_user_id = fields.UUID()
    status = fields.String()
    reason = fields.String()
    report_count = fields.Integer()
    opened_at = fields.DateTime()
    last_reported_at = fields.DateTime(allow_none=True)
    decision = fields.String(allow_none=True)
    decided_by = fields.UUID(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)


class ActionReadSchema(Schema):
    action = fields.String()
    actor_id = fields.UUID(allow_none=True)
    note = fields.String(allow_none=True)
    at = fields.DateTime()


class CaseDetailReadSchema(Schema):
    case = fields.Nested(CaseReadSchema)
    reports = fields.List(fields.Nested(StaffReportReadSchema))
    actions = fields.List(fields.Nested(ActionReadSchema))
    target = fields.Dict(metadata={"description": "the media (state, preview URLs) or account (state) reported"})


class DecisionCreateSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    note = fields.String(load_default=None, validate=validate.Length(max=2000))


class NoteCreateSchema(Schema):
    note = fields.String(required=True, validate=NOTE)
