"""Outboxes (development): the mails and pushes the outbox backends kept instead of sending."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import expose
from sqlalchemy import select

from admin.access import StaffView
from backend.common.errors import DomainError
from backend.common.mail import list_outbox
from backend.common.pagination import paginate
from backend.extensions import db
from backend.notifications.models import PushOutbox


def _page(stmt, order, template_name: str, view: StaffView):  # noqa: ANN001, ANN202 - a Flask-Admin answer
    try:
        page = paginate(db.session, stmt, order=order, cursor=request.args.get("cursor"), limit=50)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".index"))
    return _render(page, template_name, view)


def _render(page, template_name: str, view: StaffView, **extra):  # noqa: ANN001, ANN202 - a Flask-Admin answer
    args = request.args.to_dict()
    next_url = url_for(".index", **{**args, "cursor": page.next_cursor}) if page.next_cursor else None
    return view.render(template_name, rows=page.items, next_url=next_url, args=args, **extra)


class MailOutboxView(StaffView):
    """Mails kept by MAIL_BACKEND=outbox, newest first; by recipient (indexed)."""

    roles = frozenset({"admin"})

    @expose("/")
    def index(self):  # noqa: ANN201 - Flask-Admin view
        try:
            page = list_outbox(db.session, recipient=request.args.get("to") or None,
                               cursor=request.args.get("cursor"), limit=50)
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".index"))
        return _render(page, "console/outbox_mail.html", self)


class PushOutboxView(StaffView):
    """Pushes recorded by PUSH_BACKEND=outbox (marketers see their test sends here)."""

    roles = frozenset({"admin", "marketer"})

    @expose("/")
    def index(self):  # noqa: ANN201 - Flask-Admin view
        return _page(select(PushOutbox), (PushOutbox.id, PushOutbox.id), "console/outbox_push.html", self)
