"""Who may see the console: staff roles checked on every view."""
from __future__ import annotations

from flask import redirect, request, session, url_for
from werkzeug.wrappers import Response

from backend.common.access import STAFF_ROLES

__all__ = ["STAFF_ROLES", "StaffOnlyMixin"]


class StaffOnlyMixin:
    """Mixed into every console view: anonymous visitors go to the staff sign-in."""

    allowed_roles: frozenset[str] = STAFF_ROLES

    def is_accessible(self) -> bool:
        return session.get("staff_role") in self.allowed_roles

    def inaccessible_callback(self, name: str, **kwargs: object) -> Response:
        return redirect(url_for("staff_login.login", next=request.full_path))
