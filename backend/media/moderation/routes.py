"""Reports from users (/v1/media/{id}/reports, /v1/users/{id}/reports) and the staff queue (/v1/moderation)."""
from __future__ import annotations

import uuid
from dataclasses import asdict

from flask import g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from backend.audit.services import Actor, audited
from backend.common.access import current_principal, require
from backend.common.pagination import page_schema, paginate
from backend.extensions import db
from backend.media.moderation import services
from backend.media.moderation.models import ModerationCase
from backend.media.moderation.schemas import (
    ActionReadSchema,
    CaseDetailReadSchema,
    CaseQueryArgsSchema,
    CaseReadSchema,
    DecisionCreateSchema,
    NoteCreateSchema,
    ReportCreateSchema,
    ReportReadSchema,
)

reports_blp = Blueprint("reports", __name__, url_prefix="/v1", description="Report media or users to moderators")
blp = Blueprint("moderation", __name__, url_prefix="/v1/moderation",
                description="The moderation queue: cases oldest first, decisions and notes (moderators, admins)")
STAFF = ("moderator", "admin")


def _me() -> uuid.UUID:
    return uuid.UUID(str(current_principal().user_id))


def _actor() -> Actor:
    principal = current_principal()
    return Actor(user_id=principal.user_id, email=None, role=principal.role, ip=request.remote_addr,
                 request_id=g.get("request_id"))


def _case_state(case_id: uuid.UUID) -> dict | None:
    case = db.session.get(ModerationCase, case_id)
    return None if case is None else {"status": case.status, "decision": case.decision}


@reports_blp.route("/media/<uuid:media_id>/reports")
class MediaReports(MethodView):
    @require()
    @reports_blp.arguments(ReportCreateSchema)
    @reports_blp.response(201, ReportReadSchema)
    def post(self, data, media_id):
        """Report media (yours or shared with you); reporting twice counts once"""
        return services.report_media(db.session, reporter_id=_me(), media_id=media_id, **data)


@reports_blp.route("/users/<uuid:user_id>/reports")
class UserReports(MethodView):
    @require()
    @reports_blp.arguments(ReportCreateSchema)
    @reports_blp.response(201, ReportReadSchema)
    def post(self, data, user_id):
        """Report another user's account"""
        return services.report_user(db.session, reporter_id=_me(), user_id=user_id, **data)


@blp.route("/cases")
class Cases(MethodView):
    @require(*STAFF)
    @blp.arguments(CaseQueryArgsSchema, location="query")
    @blp.response(200, page_schema(CaseReadSchema))
    def get(self, args):
        """Cases to work on, oldest first"""
        stmt = services.cases_query(status=args["status"], target_type=args["target_type"])
        return paginate(db.session, stmt, order=(ModerationCase.opened_at, ModerationCase.id),
                        cursor=args["cursor"], limit=args["limit"], descending=False).as_response()


@blp.route("/cases/<uuid:case_id>")
class CaseResource(MethodView):
    @require(*STAFF)
    @blp.response(200, CaseDetailReadSchema)
    def get(self, case_id):
        """A case: its reports, its action log (who, when, notes) and the target"""
        return asdict(services.case_detail(db.session, case_id=case_id))


@blp.route("/cases/<uuid:case_id>/decision")
class CaseDecision(MethodView):
    @require(*STAFF)
    @blp.arguments(DecisionCreateSchema)
    @blp.response(200, CaseReadSchema)
    def post(self, data, case_id):
        """Decide: dismiss, remove, restore, warn or ban (audited)"""
        with audited(db.session, actor=_actor(), action=f"moderation.{data['decision']}",
                     object_type="moderation_case", object_id=case_id,
                     snapshot=lambda: _case_state(case_id), note=data["note"]):
            return services.decide(db.session, case_id=case_id, actor_id=_me(), **data)


@blp.route("/cases/<uuid:case_id>/notes")
class CaseNotes(MethodView):
    @require(*STAFF)
    @blp.arguments(NoteCreateSchema)
    @blp.response(201, ActionReadSchema)
    def post(self, data, case_id):
        """Add a note to a case"""
        return services.add_note(db.session, case_id=case_id, actor_id=_me(), **data)


blueprints = [reports_blp, blp]
