"""Account routes: /v1/auth (sign-up to sign-out), /v1/me (profile, sessions, export, deletion), JWKS."""
from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from backend.auth import accounts, credentials, deletion, factor_routes, profile, sessions, tokens
from backend.auth.passkeys import routes as passkey_routes
from backend.auth.schemas import (
    DeletionCreateSchema,
    EmailChangeCreateSchema,
    EmailRequestCreateSchema,
    JwksReadSchema,
    LoginCreateSchema,
    MeReadSchema,
    MeUpdateSchema,
    PasswordChangeCreateSchema,
    PasswordResetCreateSchema,
    RefreshCreateSchema,
    RegisterCreateSchema,
    SessionReadSchema,
    StatusReadSchema,
    TokenCreateSchema,
    TokenQueryArgsSchema,
    TokenReadSchema,
)
from backend.common.access import current_principal, public, require
from backend.common.pagination import PageQueryArgsSchema, page_schema, paginate
from backend.extensions import db

auth_blp = Blueprint("auth", __name__, url_prefix="/v1/auth", description="Sign-up, sign-in, tokens, recovery")
me_blp = Blueprint("me", __name__, url_prefix="/v1/me", description="The signed-in account")
keys_blp = Blueprint("jwks", __name__, url_prefix="/.well-known", description="Token verification keys")


def _client() -> dict[str, Any]:
    """Where a request comes from: the address after ProxyFix, never a client-chosen header."""
    return {"ip": request.remote_addr, "user_agent": request.user_agent.string or None}


@auth_blp.route("/register")
class Register(MethodView):
    @public
    @auth_blp.arguments(RegisterCreateSchema)
    @auth_blp.response(202, StatusReadSchema)
    def post(self, data):
        """Create an account; a verification link is mailed (same answer for taken addresses)"""
        return accounts.register(**data, ip=request.remote_addr)


@auth_blp.route("/verify-email")
class VerifyEmail(MethodView):
    @public
    @auth_blp.arguments(TokenQueryArgsSchema, location="query")
    @auth_blp.response(200, StatusReadSchema)
    def get(self, args):
        """Open the emailed verification link"""
        accounts.verify_email(token=args["token"], ip=request.remote_addr)
        return {"status": "verified", "message": "Your email address is confirmed; you can sign in."}

    @public
    @auth_blp.arguments(TokenCreateSchema)
    @auth_blp.response(200, StatusReadSchema)
    def post(self, data):
        """Verify an email address with the token from the link (for apps that intercept it)"""
        accounts.verify_email(token=data["token"], ip=request.remote_addr)
        return {"status": "verified", "message": "Your email address is confirmed; you can sign in."}


@auth_blp.route("/resend-verification")
class ResendVerification(MethodView):
    @public
    @auth_blp.arguments(EmailRequestCreateSchema)
    @auth_blp.response(202, StatusReadSchema)
    def post(self, data):
        """Mail a new verification link"""
        return accounts.resend_verification(email=data["email"], ip=request.remote_addr)


@auth_blp.route("/login")
class Login(MethodView):
    @public
    @auth_blp.arguments(LoginCreateSchema)
    @auth_blp.response(200, TokenReadSchema)
    def post(self, data):
        """Sign in with email and password (answers with a two-factor challenge when it is on)"""
        return accounts.login(**data, **_client())


@auth_blp.route("/refresh")
class Refresh(MethodView):
    @public
    @auth_blp.arguments(RefreshCreateSchema)
    @auth_blp.response(200, TokenReadSchema)
    def post(self, data):
        """Exchange a refresh token for a new pair (the old one stops working)"""
        return sessions.refresh_session(refresh_token=data["refresh_token"], ip=request.remote_addr)


@auth_blp.route("/logout")
class Logout(MethodView):
    @require()
    @auth_blp.response(204)
    def post(self):
        """Sign out this device"""
        principal = current_principal()
        sessions.end_session(user_id=principal.user_id, session_id=principal.session_id)


@auth_blp.route("/logout-all")
class LogoutAll(MethodView):
    @require()
    @auth_blp.response(204)
    def post(self):
        """Sign out every device, this one included"""
        user = accounts.load_user(current_principal().user_id)
        sessions.end_all_sessions(user=user, reason="signed_out_everywhere")


@auth_blp.route("/password-reset/request")
class PasswordResetRequest(MethodView):
    @public
    @auth_blp.arguments(EmailRequestCreateSchema)
    @auth_blp.response(202, StatusReadSchema)
    def post(self, data):
        """Mail a password reset link (same answer whether or not the address has an account)"""
        return credentials.request_password_reset(email=data["email"], ip=request.remote_addr)


@auth_blp.route("/password-reset")
class PasswordReset(MethodView):
    @public
    @auth_blp.arguments(TokenQueryArgsSchema, location="query")
    @auth_blp.response(200, StatusReadSchema)
    def get(self, args):
        """Check that a reset link can still be used (does not use it)"""
        return credentials.check_reset_link(token=args["token"])

    @public
    @auth_blp.arguments(PasswordResetCreateSchema)
    @auth_blp.response(204)
    def post(self, data):
        """Choose a new password with a reset token; every session ends, nobody is signed in"""
        credentials.reset_password(token=data["token"], password=data["password"], ip=request.remote_addr)


@auth_blp.route("/confirm-email-change")
class ConfirmEmailChange(MethodView):
    @public
    @auth_blp.arguments(TokenQueryArgsSchema, location="query")
    @auth_blp.response(200, StatusReadSchema)
    def get(self, args):
        """Open the link mailed to the new address: the account switches to it"""
        credentials.confirm_email_change(token=args["token"], ip=request.remote_addr)
        return {"status": "changed", "message": "Your account now uses this address."}


@me_blp.route("")
class Me(MethodView):
    @require()
    @me_blp.response(200, MeReadSchema)
    def get(self):
        """Read my profile"""
        return profile.get_profile(user_id=current_principal().user_id)

    @require()
    @me_blp.arguments(MeUpdateSchema)
    @me_blp.response(200, MeReadSchema)
    def patch(self, data):
        """Update my profile (display name, first name, locale, time zone, properties)"""
        return profile.update_profile(user_id=current_principal().user_id, changes=data)


@me_blp.route("/password")
class MyPassword(MethodView):
    @require()
    @me_blp.arguments(PasswordChangeCreateSchema)
    @me_blp.response(200, TokenReadSchema)
    def post(self, data):
        """Change my password (current one required); other devices are signed out, this one gets new tokens"""
        return credentials.change_password(user_id=current_principal().user_id, **data, **_client())


@me_blp.route("/email")
class MyEmail(MethodView):
    @require()
    @me_blp.arguments(EmailChangeCreateSchema)
    @me_blp.response(202, StatusReadSchema)
    def post(self, data):
        """Ask to change my email address; the new address must confirm it"""
        return credentials.request_email_change(user_id=current_principal().user_id, new_email=data["new_email"],
                                                password=data["password"], ip=request.remote_addr)


@me_blp.route("/sessions")
class MySessions(MethodView):
    @require()
    @me_blp.arguments(PageQueryArgsSchema, location="query")
    @me_blp.response(200, page_schema(SessionReadSchema))
    def get(self, args):
        """List my signed-in devices"""
        from backend.auth.models import Session

        principal = current_principal()
        page = paginate(db.session, sessions.list_sessions(user_id=principal.user_id),
                        order=(Session.created_at, Session.id), cursor=args["cursor"], limit=args["limit"])
        for item in page.items:
            item.current = item.id == principal.session_id
        return page.as_response()


@me_blp.route("/sessions/<uuid:session_id>")
class MySession(MethodView):
    @require()
    @me_blp.response(204)
    def delete(self, session_id):
        """Sign out one of my devices"""
        sessions.end_session(user_id=current_principal().user_id, session_id=session_id, reason="revoked_by_user")


@me_blp.route("/export")
class MyExport(MethodView):
    @require()
    @me_blp.response(200)
    def get(self):
        """Download everything stored about me, as JSON"""
        return deletion.export_account(user_id=current_principal().user_id)


@me_blp.route("/deletion")
class MyDeletion(MethodView):
    @require()
    @me_blp.arguments(DeletionCreateSchema)
    @me_blp.response(200, MeReadSchema)
    def post(self, data):
        """Delete my account after the grace period (signing in again or DELETE cancels)"""
        principal = current_principal()
        user = accounts.load_user(principal.user_id)
        if user.password_hash:
            accounts.reauthenticate(user=user, password=data["password"], ip=request.remote_addr)
        deletion.request_deletion(user=user)
        return profile.profile_of(user)

    @require()
    @me_blp.response(200, MeReadSchema)
    def delete(self):
        """Cancel the pending deletion of my account"""
        user = accounts.load_user(current_principal().user_id)
        deletion.cancel_deletion(user=user)
        return profile.profile_of(user)


@keys_blp.route("/jwks.json")
class Jwks(MethodView):
    @public
    @keys_blp.response(200, JwksReadSchema)
    def get(self):
        """Public keys that verify access tokens (JWK Set)"""
        return tokens.jwks()


blueprints = [auth_blp, me_blp, keys_blp, factor_routes.blp, *passkey_routes.blueprints]
