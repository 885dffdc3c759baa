"""Audit log (admin reads; nobody edits: the database refuses UPDATE, DELETE and TRUNCATE)."""
from __future__ import annotations

import uuid

from flask import flash, redirect, request, url_for
from flask_admin import expose

from admin.access import StaffView
from backend.audit.models import AuditEntry
from backend.audit.services import entries_query
from backend.common.errors import DomainError
from backend.common.pagination import paginate
from backend.extensions import db


class AuditLogView(StaffView):
    """Every staff action, newest first, filtered by object, actor or action."""

    roles = frozenset({"admin"})

    @expose("/")
    def index(self):  # noqa: ANN201 - Flask-Admin view
        args = request.args
        try:
            actor_id = uuid.UUID(args["actor_id"]) if args.get("actor_id") else None
        except ValueError:
            flash("actor_id must be a user id.", "warning")
            actor_id = None
        stmt = entries_query(object_type=args.get("object_type") or None, object_id=args.get("object_id") or None,
                             actor_id=actor_id, action=args.get("action") or None)
        try:
            page = paginate(db.session, stmt, order=(AuditEntry.id, AuditEntry.id), cursor=args.get("cursor"),
                            limit=50)
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".index"))
        next_url = url_for(".index", **{**args.to_dict(), "cursor": page.next_cursor}) if page.next_cursor else None
        return self.render("console/audit.html", entries=page.items, next_url=next_url, args=args)
