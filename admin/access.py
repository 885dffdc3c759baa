"""Who may do what in the console: a role set per view, and per action.

Every console view derives from ``StaffView`` and names ``roles`` (who may open it).
Every POST handler is a named action (``@console_action("suspend")``) whose roles are in
the view's ``action_roles``; a POST handler without one fails the access-matrix test
(tests/console/test_access_matrix.py, generated from the registered views).
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, redirect, render_template, request, session, url_for
from flask_admin import BaseView
from werkzeug.wrappers import Response

from backend.audit.services import Actor
from backend.auth.models import User
from backend.common.access import STAFF_ROLES
from backend.extensions import db

__all__ = ["STAFF_ROLES", "StaffView", "chosen_ids", "console_action", "console_form", "current_actor", "denied"]
F = TypeVar("F", bound=Callable[..., Any])


def denied(message: str = "Your role does not allow this page or action.") -> Response:
    """The console's 403 page."""
    return Response(render_template("console/error.html", status=403, message=message), status=403,
                    mimetype="text/html")


def current_actor() -> Actor:
    """The signed-in staff member, for the audit log."""
    actor = getattr(request, "_console_actor", None)  # per request, not per app context
    if actor is None:
        user_id = session.get("staff_user_id")
        user = db.session.get(User, user_id) if user_id else None
        actor = request._console_actor = Actor(  # type: ignore[attr-defined]
            user_id=user.id if user else None, email=user.email if user else None, role=session.get("staff_role"),
            ip=request.remote_addr, request_id=g.get("request_id"))
    return actor


class StaffView(BaseView):
    """A console view: open to ``roles``; each POST action open to ``action_roles[name]``."""

    roles: frozenset[str] = frozenset({"admin"})
    action_roles: dict[str, frozenset[str]] = {}

    @property
    def role(self) -> str | None:
        return session.get("staff_role")

    def is_accessible(self) -> bool:
        return self.role in self.roles

    def is_visible(self) -> bool:
        return self.is_accessible()  # the menu shows only what the role may open

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Response:
        if session.get("staff_role") in STAFF_ROLES:
            return denied()
        return redirect(url_for("staff_login.login", next=request.full_path))

    def may(self, action: str) -> bool:
        """Whether the signed-in role may run ``action`` (templates hide buttons with it)."""
        return self.role in self.action_roles.get(action, frozenset())


def console_action(*names: str, field: str | None = None) -> Callable[[F], F]:
    """Mark a POST handler as action ``names[0]`` (or, with ``field``, the one of ``names`` the form
    names); refuse it with 403 to roles not allowed, 400 to an unknown action."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(self: StaffView, *args: Any, **kwargs: Any) -> Any:
            name = request.form.get(field, "") if field else names[0]
            if name not in names:
                return Response(render_template("console/error.html", status=400, message="Unknown action."),
                                status=400, mimetype="text/html")
            if not self.may(name):
                return denied()
            return view(self, *args, **kwargs)

        wrapper._console_actions = names  # type: ignore[attr-defined]
        wrapper._console_action_field = field  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def console_form(action: str) -> Callable[[F], F]:
    """Mark a GET page as the form of ``action``: only roles that may run the action open it."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(self: StaffView, *args: Any, **kwargs: Any) -> Any:
            return view(self, *args, **kwargs) if self.may(action) else denied()

        wrapper._console_form_of = action  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def chosen_ids(values: list[str], *, most: int) -> list[uuid.UUID]:
    """The ids a bulk form sent (checkboxes), at most ``most``; anything not an id is dropped."""
    ids = []
    for value in values[:most]:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    return ids
