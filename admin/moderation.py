"""The moderation queue (moderators; admins): reports on media and users, oldest first; decide.

Every decision and note goes through ``backend.media.moderation.services`` (the code the
API runs), each decision inside ``audited`` so its audit entry commits with it. Reported
content is shown safely: images and video through short-lived signed URLs (the console's
CSP allows only the storage origin), every text escaped by the templates.
"""
from __future__ import annotations

import uuid
from typing import Any

from flask import flash, redirect, request, url_for
from flask_admin import expose
from sqlalchemy import select
from werkzeug.wrappers import Response

from admin.access import StaffView, chosen_ids, console_action, current_actor
from backend.audit.services import audited
from backend.auth.models import User
from backend.common.errors import DomainError
from backend.common.pagination import paginate
from backend.extensions import db
from backend.media.models import Media
from backend.media.moderation import services
from backend.media.moderation.models import DECISIONS, TARGETS, ModerationCase

MODERATORS = frozenset({"moderator", "admin"})
BULK_MAX = 50
# decision → (button label, what it does, in the confirmation and the page)
DECISION_TEXT = {
    "dismiss": ("Dismiss", "Nothing wrong: the case closes and the content is served as before."),
    "remove": ("Remove content", "The media stops being served at once; its variants are deleted."),
    "restore": ("Restore", "Removed media is made again from its original; a banned account is unsuspended."),
    "warn": ("Warn user", "The owner gets a warning by mail; the content stays."),
    "ban": ("Ban user", "The account is suspended (every session ends); reported media is removed."),
}


def case_state(case_id: uuid.UUID) -> dict[str, Any] | None:
    """What the audit log keeps of a case, before and after a decision."""
    case = db.session.get(ModerationCase, case_id)
    return None if case is None else {"status": case.status, "decision": case.decision}


def _emails(user_ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {i for i in user_ids if i}
    if not wanted:
        return {}
    return {u.id: (u.email or str(u.id)) for u in db.session.scalars(select(User).where(User.id.in_(wanted)))}


def decide_one(case_id: uuid.UUID, decision: str, note: str | None) -> None:
    """Apply one decision, audited in its own transaction (raises DomainError)."""
    actor = current_actor()
    with audited(db.session, actor=actor, action=f"moderation.{decision}", object_type="moderation_case",
                 object_id=case_id, snapshot=lambda: case_state(case_id), note=note):
        services.decide(db.session, case_id=case_id, actor_id=actor.user_id, decision=decision, note=note)


class ModerationView(StaffView):
    """Open cases oldest first, a case page with the content and its history, decisions one by one or in bulk."""

    roles = MODERATORS
    action_roles = {**{name: MODERATORS for name in DECISIONS}, "note": MODERATORS}

    @expose("/")
    def index(self):  # noqa: ANN201 - Flask-Admin view
        args = request.args
        status = args.get("status", "open") if args.get("status", "open") in ("open", "closed") else "open"
        target = args.get("target") if args.get("target") in TARGETS else None
        try:
            page = paginate(db.session, services.cases_query(status=status, target_type=target),
                            order=(ModerationCase.opened_at, ModerationCase.id), cursor=args.get("cursor"),
                            limit=50, descending=False)
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".index"))
        next_url = url_for(".index", **{**args.to_dict(), "cursor": page.next_cursor}) if page.next_cursor else None
        owners = _emails({c.subject_user_id for c in page.items})
        return self.render("console/moderation/queue.html", cases=page.items, owners=owners, status=status,
                           target=target or "", targets=TARGETS, next_url=next_url, decisions=DECISION_TEXT)

    @expose("/<uuid:case_id>")
    def case(self, case_id: uuid.UUID):  # noqa: ANN201 - Flask-Admin view
        try:
            detail = services.case_detail(db.session, case_id=case_id)
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".index"))
        people = _emails({detail.case.subject_user_id, detail.case.decided_by,
                          *(r.reporter_id for r in detail.reports), *(a.actor_id for a in detail.actions)})
        return self.render("console/moderation/case.html", detail=detail, case=detail.case, people=people,
                           previews=_previews(detail.case), decisions=DECISION_TEXT)

    @expose("/<uuid:case_id>/decide", methods=("POST",))
    @console_action(*DECISIONS, field="decision")
    def decide(self, case_id: uuid.UUID) -> Response:
        decision = request.form["decision"]
        note = (request.form.get("note") or "").strip()[:2000] or None
        try:
            decide_one(case_id, decision, note)
            flash(f"{DECISION_TEXT[decision][0]}: done.", "success")
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        return redirect(url_for(".case", case_id=case_id))

    @expose("/<uuid:case_id>/note", methods=("POST",))
    @console_action("note")
    def note(self, case_id: uuid.UUID) -> Response:
        text = (request.form.get("note") or "").strip()[:2000]
        if not text:
            flash("Write the note first.", "warning")
            return redirect(url_for(".case", case_id=case_id))
        try:
            services.add_note(db.session, case_id=case_id, actor_id=current_actor().user_id, note=text)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        return redirect(url_for(".case", case_id=case_id))

    @expose("/bulk", methods=("POST",))
    @console_action(*DECISIONS, field="decision")
    def bulk(self):  # noqa: ANN201 - Flask-Admin view
        """Confirm, then apply one decision to each chosen case (each audited on its own)."""
        decision = request.form["decision"]
        ids = chosen_ids(request.form.getlist("case_id"), most=BULK_MAX)
        if not ids:
            flash("Choose at least one case.", "warning")
            return redirect(url_for(".index"))
        if request.form.get("confirmed") != "yes":
            cases = list(db.session.scalars(select(ModerationCase).where(ModerationCase.id.in_(ids))
                                            .order_by(ModerationCase.opened_at)))
            return self.render("console/moderation/confirm.html", cases=cases, decision=decision,
                               label=DECISION_TEXT[decision][0], explanation=DECISION_TEXT[decision][1])
        note = (request.form.get("note") or "").strip()[:2000] or None
        done, failed = 0, []
        for case_id in ids:
            try:
                decide_one(case_id, decision, note)
                done += 1
            except DomainError as exc:
                db.session.rollback()
                failed.append(f"{case_id}: {exc.message}")
        if done:
            flash(f"{DECISION_TEXT[decision][0]}: done for {done} case(s).", "success")
        for message in failed:
            flash(message, "error")
        return redirect(url_for(".index"))


def _previews(case: ModerationCase) -> list[dict[str, str]]:
    """A media case's variants as a page shows them (image, video or a link), by signed URL."""
    media = db.session.get(Media, case.target_id) if case.target_type == "media" else None
    if media is None or media.moderation == "removed":  # its variants were deleted; a restore makes them again
        return []
    shown = []
    for name, url in sorted(services.staff_preview(media).items()):
        content_type = (media.variants or {}).get(name, {}).get("content_type") or ""
        kind = "image" if content_type.startswith("image/") else "video" if content_type == "video/mp4" else "link"
        shown.append({"name": name, "url": url, "kind": kind, "content_type": content_type})
    return shown
