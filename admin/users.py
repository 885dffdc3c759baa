"""Users (admin acts; moderators read): search, filters, a profile, actions one by one or in bulk.

Every action goes through a confirmation page, then the auth services (the code the API
runs), each inside ``audited`` so its audit entry commits with it.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

from flask import flash, redirect, request, url_for
from flask_admin import expose
from sqlalchemy import select
from werkzeug.wrappers import Response

from admin.access import StaffView, chosen_ids, console_action, current_actor
from backend.audit.models import AuditEntry
from backend.audit.services import audited, entries_query
from backend.auth import accounts, deletion, directory
from backend.auth.sessions import end_all_sessions
from backend.common.access import STAFF_ROLES
from backend.common.errors import DomainError
from backend.common.pagination import paginate
from backend.extensions import db
from backend.media.models import Media
from backend.media.moderation.models import ModerationCase
from backend.notifications.devices import list_devices

ADMIN = frozenset({"admin"})
BULK_MAX = 100  # one page of users; bigger sweeps belong in a job


def _suspend(user_id: uuid.UUID, note: str | None) -> None:
    accounts.suspend_account(user_id=user_id, reason=note or "suspended by staff")


def _sign_out_everywhere(user_id: uuid.UUID, note: str | None) -> None:
    end_all_sessions(user=directory.get_user(user_id), reason="revoked_by_staff")


# action → (label, what the confirmation page says, service call)
ACTIONS: dict[str, tuple[str, str, Callable[[uuid.UUID, str | None], Any]]] = {
    "suspend": ("Suspend", "Every session ends now and sign-in is refused until unsuspended.", _suspend),
    "unsuspend": ("Unsuspend", "The account can sign in again.",
                  lambda uid, _: accounts.reinstate_account(user_id=uid)),
    "verify": ("Mark verified", "The email address counts as confirmed.",
               lambda uid, _: accounts.mark_email_verified(user_id=uid)),
    "sign_out_everywhere": ("Sign out everywhere", "Every session and token of the account stops working now.",
                            _sign_out_everywhere),
    "delete": ("Delete", "The account is erased after the grace period unless its owner signs in.",
               lambda uid, _: deletion.request_deletion(user=directory.get_user(uid))),
    "cancel_deletion": ("Cancel deletion", "The pending deletion is called off.",
                        lambda uid, _: deletion.cancel_deletion(user=directory.get_user(uid))),
}


def _date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        flash(f"{raw!r} is not a date (YYYY-MM-DD); that filter was ignored.", "warning")
        return None


class UsersView(StaffView):
    """Account search and staff actions on accounts."""

    roles = frozenset({"admin", "moderator"})
    action_roles = {name: ADMIN for name in ACTIONS}
    actions = ACTIONS

    @expose("/")
    def index(self):  # noqa: ANN201 - Flask-Admin view
        args = request.args
        filters = {
            "q": args.get("q", "")[:320],
            "status": args.get("status") if args.get("status") in directory.STATUSES else None,
            "role": args.get("role") if args.get("role") in ("user", *sorted(STAFF_ROLES)) else None,
            "platform": args.get("platform") if args.get("platform") in directory.PLATFORMS else None,
            "signed_up_from": _date(args.get("from")), "signed_up_to": _date(args.get("to")),
        }
        try:
            page = paginate(db.session, directory.users_query(**filters), order=(
                directory.User.created_at, directory.User.id), cursor=args.get("cursor"), limit=50)
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".index"))
        next_url = url_for(".index", **{**args.to_dict(), "cursor": page.next_cursor}) if page.next_cursor else None
        return self.render("console/users/list.html", users=page.items, next_url=next_url, filters=filters,
                           args=args, statuses=directory.STATUSES, platforms=directory.PLATFORMS,
                           roles=("user", *sorted(STAFF_ROLES)))

    @expose("/<uuid:user_id>")
    def profile(self, user_id: uuid.UUID):  # noqa: ANN201 - Flask-Admin view
        try:
            profile = directory.user_profile(user_id)
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".index"))
        audit = list(db.session.scalars(entries_query(object_type="user", object_id=str(user_id))
                                        .order_by(AuditEntry.id.desc()).limit(20)))
        devices = list_devices(db.session, user_id=user_id)
        media = list(db.session.scalars(select(Media).where(Media.owner_id == user_id)
                                        .order_by(Media.created_at.desc()).limit(20)))
        cases = list(db.session.scalars(select(ModerationCase).where(ModerationCase.subject_user_id == user_id)
                                        .order_by(ModerationCase.opened_at.desc()).limit(20)))
        return self.render("console/users/profile.html", devices=devices, audit=audit, media=media, cases=cases,
                           **profile)

    @expose("/confirm", methods=("POST",))
    @console_action(*ACTIONS, field="action")
    def confirm(self) -> Any:
        """Show what an action will do to the chosen accounts, and ask to confirm."""
        action = request.form["action"]
        ids = chosen_ids(request.form.getlist("user_id"), most=BULK_MAX)
        if not ids:
            flash("Choose at least one account.", "warning")
            return redirect(request.referrer or url_for(".index"))
        users = list(db.session.scalars(directory.users_query().where(directory.User.id.in_(ids))))
        label, explanation, _ = ACTIONS[action]
        return self.render("console/users/confirm.html", action=action, label=label, explanation=explanation,
                           users=users)

    @expose("/apply", methods=("POST",))
    @console_action(*ACTIONS, field="action")
    def apply(self) -> Response:
        """Run a confirmed action on each chosen account, each audited in its own transaction."""
        action = request.form["action"]
        ids = chosen_ids(request.form.getlist("user_id"), most=BULK_MAX)
        note = (request.form.get("note") or "").strip()[:500] or None
        _, _, run = ACTIONS[action]
        done, failed = 0, []
        for user_id in ids:
            try:
                with audited(db.session, actor=current_actor(), action=f"user.{action}", object_type="user",
                             object_id=user_id, snapshot=lambda uid=user_id: directory.user_state(uid), note=note):
                    run(user_id, note)
                done += 1
            except DomainError as exc:
                db.session.rollback()
                failed.append(f"{user_id}: {exc.message}")
        if done:
            flash(f"{ACTIONS[action][0]}: done for {done} account(s).", "success")
        for message in failed:
            flash(message, "error")
        if len(ids) == 1:
            return redirect(url_for(".profile", user_id=ids[0]))
        return redirect(url_for(".index"))
