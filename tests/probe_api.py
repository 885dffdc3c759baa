"""A small API used only by the foundation tests to exercise the shared conventions.

It lives in tests/ on its own metadata (not in migrations): the conventions are
proved here once, then every domain uses the same helpers.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import DateTime, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from backend.common.errors import Conflict, NotFound
from backend.common.idempotency import idempotent
from backend.common.pagination import PageQueryArgsSchema, page_schema, paginate
from backend.extensions import db


class ProbeBase(DeclarativeBase):
    pass


class ProbeNote(ProbeBase):
    __tablename__ = "probe_notes"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    text: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NoteCreateSchema(Schema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=200))


class NoteReadSchema(Schema):
    id = fields.UUID(dump_only=True)
    text = fields.String()
    created_at = fields.DateTime()


blp = Blueprint("probe", __name__, url_prefix="/v1/probe", description="Convention probe")


@blp.route("/notes")
class Notes(MethodView):
    @blp.arguments(PageQueryArgsSchema, location="query")
    @blp.response(200, page_schema(NoteReadSchema))
    def get(self, args):
        """List notes"""
        page = paginate(db.session, select(ProbeNote), order=(ProbeNote.created_at, ProbeNote.id),
                        cursor=args["cursor"], limit=args["limit"])
        return page.as_response()

    @idempotent
    @blp.arguments(NoteCreateSchema)
    @blp.response(201, NoteReadSchema)
    def post(self, data):
        """Create a note"""
        if data["text"] == "conflict":
            raise Conflict("That note conflicts.", code="note_conflict")
        if data["text"] == "boom":
            raise RuntimeError("unexpected failure")
        note = ProbeNote(text=data["text"])
        db.session.add(note)
        db.session.commit()
        return note


@blp.route("/notes/<uuid:note_id>")
class Note(MethodView):
    @blp.response(200, NoteReadSchema)
    def get(self, note_id):
        """Read a note"""
        note = db.session.get(ProbeNote, note_id)
        if note is None:
            raise NotFound("No such note.")
        return note


@blp.route("/limited")
class Limited(MethodView):
    """Given a tight limit ("3 per minute") by the test fixture on the app's own limiter."""

    @blp.response(200)
    def get(self):
        """A route with a tight rate limit"""
        return {"ok": True}
