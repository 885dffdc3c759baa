"""Staff sign-in for the console at /admin/login (endpoint ``staff_login.login``).

Staff roles only; email and password, then the TOTP (or recovery) code when two-factor
is on. Forms carry Flask-WTF CSRF tokens. Attempts are limited per account and per
address before any hash (``backend.auth.lockout``, kind ``staff_login``). The console
session cookie is HttpOnly, SameSite=Lax and Secure in production, and every console
request re-checks the account, so a suspension, a role change or "sign out everywhere"
ends console access on the next click.
"""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from admin.access import STAFF_ROLES
from backend.auth import lockout
from backend.auth.accounts import authenticate
from backend.auth.models import User
from backend.common.errors import DomainError
from backend.extensions import db

bp = Blueprint("staff_login", __name__, url_prefix="/admin", template_folder="templates")
MFA_PENDING_S = 300
_REFUSED = "The email or password is not correct, or this account has no console access."


class StaffLoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class StaffCodeForm(FlaskForm):
    code = StringField("Authentication or recovery code", validators=[DataRequired(), Length(max=64)])


def _safe_next(target: str | None) -> str:
    """Only console paths of this site: no open redirect."""
    if target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("admin.index")


def _sign_in(user: User) -> Response:
    target = _safe_next(session.get("staff_next"))
    session.clear()  # a fresh session on privilege change (no fixation)
    session.permanent = True
    session.update(staff_user_id=str(user.id), staff_role=user.role, staff_ver=user.token_version)
    return redirect(target)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Email and password (then a code when two-factor is on)."""
    form = StaffLoginForm()
    if request.method == "GET":
        session["staff_next"] = _safe_next(request.args.get("next"))
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        error = None if status == 200 else _form_error(form)
        return render_template("staff_login.html", form=form, error=error), status
    from backend.auth.factors import totp

    email = form.email.data.strip().lower()
    try:
        user = authenticate(email=email, password=form.password.data, ip=request.remote_addr, kind="staff_login")
    except DomainError as exc:
        status = exc.status if exc.status in (429, 503) else 401
        message = exc.message if status != 401 else _REFUSED
        return render_template("staff_login.html", form=form, error=message), status
    if user.role not in STAFF_ROLES or user.status != "active":
        db.session.rollback()
        return render_template("staff_login.html", form=form, error=_REFUSED), 401
    db.session.commit()  # keeps a parameter upgrade of the hash
    if totp.user_requires_totp(user):
        session["staff_mfa_user"], session["staff_mfa_at"] = str(user.id), time.time()
        return redirect(url_for("staff_login.code"))
    return _sign_in(user)


@bp.route("/login/code", methods=["GET", "POST"])
def code() -> Any:
    """Second step: a TOTP or recovery code."""
    from backend.auth.factors import totp

    user_id, started = session.get("staff_mfa_user"), session.get("staff_mfa_at", 0)
    if not user_id or time.time() - started > MFA_PENDING_S:
        session.pop("staff_mfa_user", None)
        return redirect(url_for("staff_login.login"))
    form = StaffCodeForm()
    if not form.validate_on_submit():
        return render_template("staff_code.html", form=form, error=None), 200 if request.method == "GET" else 400
    try:
        # The same budget as the API's second step: one TOTP secret, one count of guesses.
        lockout.guard(kind="otp", account=str(user_id), ip=request.remote_addr)
    except DomainError as exc:
        return render_template("staff_code.html", form=form, error=exc.message), exc.status
    user = db.session.get(User, user_id)
    if user is None or user.role not in STAFF_ROLES or user.status != "active":
        session.clear()
        return redirect(url_for("staff_login.login"))
    if not totp.verify_second_factor(user=user, code=form.code.data.strip()):
        return render_template("staff_code.html", form=form, error="That code is not valid."), 401
    return _sign_in(user)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """End the console session (POST with the CSRF token)."""
    form = FlaskForm()
    if form.validate_on_submit():
        session.clear()
    return redirect(url_for("staff_login.login"))


def _form_error(form: FlaskForm) -> str:
    if "csrf_token" in form.errors:
        return "The form expired; please try again."
    return "Enter your email and password."


def _recheck_staff() -> None:
    """Drop the console session when the account lost access since it signed in."""
    if not request.path.startswith("/admin") or request.blueprint == "staff_login" or "staff_user_id" not in session:
        return
    row = db.session.execute(select(User.role, User.status, User.token_version)
                             .where(User.id == session["staff_user_id"])).first()
    if row is None or row.role not in STAFF_ROLES or row.status != "active" or row.token_version != session.get(
            "staff_ver") or row.role != session.get("staff_role"):
        session.clear()


def init_staff_login(app: Flask) -> None:
    """Register the sign-in pages, the per-request re-check and the console cookie policy."""
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = app.config["ENV"] == "production"
    # Assigned, not setdefault: Flask ships a 31-day default that setdefault would keep.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=8)
    app.register_blueprint(bp)
    app.before_request(_recheck_staff)
