"""The account mails: each issues its single-use link (if any) and queues the mail after commit."""
from __future__ import annotations

from flask import current_app

from backend.auth.links import onetime
from backend.auth.models import User
from backend.common.mail import queue_mail
from backend.extensions import db


def _link(user: User, *, purpose: str, path: str, email: str, ttl_setting: str) -> tuple[str, int]:
    """A single-use link for ``purpose`` opening ``path``, and how many seconds it lives."""
    ttl = current_app.config[ttl_setting]
    token = onetime.issue(user_id=user.id, purpose=purpose, email=email, ttl_s=ttl)
    return onetime.link(path, token), ttl


def _hours(seconds: int) -> str:
    return f"{max(1, seconds // 3600)} hour{'s' if seconds >= 7200 else ''}"


def send_verification(user: User) -> None:
    """A link that verifies the account's email address."""
    url, ttl = _link(user, purpose="verify_email", path="/v1/auth/verify-email", email=user.email or "",
                     ttl_setting="VERIFY_EMAIL_TOKEN_TTL_S")
    queue_mail(db.session, to=user.email or "", subject="Confirm your email address", text=(
        f"Welcome!\n\nConfirm your email address by opening this link within {_hours(ttl)}:\n\n{url}\n\n"
        "If you did not create an account, ignore this message."))


def send_already_registered(email: str) -> None:
    """Someone tried to sign up with an address that has an account (no enumeration in the API)."""
    queue_mail(db.session, to=email, subject="You already have an account", text=(
        "Someone (hopefully you) tried to create an account with this address, which already has one.\n\n"
        "Sign in instead, or reset your password from the app if you forgot it. "
        "If it was not you, you can ignore this message."))


def send_password_reset(user: User) -> None:
    """A single-use, expiring link to choose a new password."""
    url, ttl = _link(user, purpose="reset_password", path="/v1/auth/password-reset", email=user.email or "",
                     ttl_setting="PASSWORD_RESET_TOKEN_TTL_S")
    queue_mail(db.session, to=user.email or "", subject="Reset your password", text=(
        f"Open this link within {_hours(ttl)} to choose a new password:\n\n{url}\n\n"
        "It works once. Every device signed in to your account will be signed out. "
        "If you did not ask for this, ignore this message: your password stays as it is."))


def send_email_change(user: User, new_email: str) -> None:
    """A link, sent to the new address, that confirms the change."""
    url, ttl = _link(user, purpose="change_email", path="/v1/auth/confirm-email-change", email=new_email,
                     ttl_setting="VERIFY_EMAIL_TOKEN_TTL_S")
    queue_mail(db.session, to=new_email, subject="Confirm your new email address", text=(
        f"Open this link within {_hours(ttl)} to use this address for your account:\n\n{url}\n\n"
        "If you did not ask for this, ignore this message."))


def send_notice(email: str, subject: str, text: str) -> None:
    """A plain security notice (password changed, email changed, deletion scheduled)."""
    queue_mail(db.session, to=email, subject=subject, text=text)
