"""Account routes: /v1/auth (sign-up to sign-out), /v1/me (profile, sessions, export, deletion), JWKS."""
from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint

from backend.auth import accounts, credentials, deletion, profile, security_events, sessions, tokens
from backend.auth.factors import routes as factor_routes
from backend.auth.links import app_association
from backend.auth.links import pages as link_pages
from backend.auth.passkeys import routes as passkey_routes
from backend.auth.principal import load_principal
from backend.auth.schemas import (
    AppleAppSiteAssociationReadSchema,
    AssetLinkReadSchema,
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
    SecurityEventReadSchema,
    SessionReadSchema,
    StatusReadSchema,
    TokenCreateSchema,
    TokenQueryArgsSchema,
    TokenReadSchema,
)
from backend.common.access import current_principal, public, require
from backend.common.errors import NotFound
from backend.common.openapi import answers
from backend.common.pagination import PageQueryArgsSchema, page_schema, paginate
from backend.extensions import db

auth_blp = Blueprint("auth", __name__, url_prefix="/v1/auth", description="Sign-up, sign-in, tokens, recovery")
me_blp = Blueprint("me", __name__, url_prefix="/v1/me", description="The signed-in account")
keys_blp = Blueprint("jwks", __name__, url_prefix="/.well-known",
                     description="Token verification keys, and the files that tie the apps to this domain")


def no_store(response: Response) -> Response:
    """Never cached anywhere: tokens, codes, secrets, challenges (RFC 6749 §5.1 asks it of token answers)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


# Every /v1/auth answer; on /v1/me, the ones carrying tokens or the whole account.
auth_blp.after_request(no_store)
factor_routes.blp.after_request(no_store)
passkey_routes.blp.after_request(no_store)


@me_blp.after_request
def _no_store_me(response: Response) -> Response:
    return no_store(response) if request.endpoint in ("me.MyPassword", "me.MyExport") else response


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


def _claimant_id() -> Any:
    """The account whose app sends this request with its bearer token (None without one)."""
    return load_principal("user").user_id if request.headers.get("Authorization") else None


@auth_blp.route("/verify-email")
class VerifyEmail(MethodView):
    @public
    @auth_blp.arguments(TokenQueryArgsSchema, location="query")
    @auth_blp.response(200, StatusReadSchema)
    @auth_blp.alt_response(303, description="a browser, when EMAIL_ACTION_URL is set: to the app with the outcome")
    @answers(410)
    def get(self, args):
        """Open the emailed verification link (a browser gets a plain HTML page, or the app link)"""
        def verify() -> dict[str, str]:
            return accounts.verify_email(token=args["token"], ip=request.remote_addr)

        return link_pages.link_page("verify_email", verify) if link_pages.wants_page() else verify()

    @public
    @auth_blp.arguments(TokenCreateSchema)
    @auth_blp.response(200, StatusReadSchema)
    @answers(401, 410)
    def post(self, data):
        """Verify an email address with the token from the link (the app, with its bearer token when signed in)"""
        return accounts.verify_email(token=data["token"], ip=request.remote_addr, claimant_id=_claimant_id())


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
    @answers(401, 403)
    def post(self, data):
        """Sign in with email and password (answers with a two-factor challenge when it is on)"""
        return accounts.login(**data, **_client())


@auth_blp.route("/refresh")
class Refresh(MethodView):
    @public
    @auth_blp.arguments(RefreshCreateSchema)
    @auth_blp.response(200, TokenReadSchema)
    @answers(401)
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
    @auth_blp.alt_response(303, description="a browser, when EMAIL_ACTION_URL is set: to the app with the token")
    @answers(410)
    def get(self, args):
        """Check that a reset link can still be used (does not use it; browsers get a page or the app link)"""
        def check() -> dict[str, str]:
            return credentials.check_reset_link(token=args["token"])

        if link_pages.wants_page():  # the app, opened by the link, chooses the password with the token
            return link_pages.link_page("reset_password", check, token=args["token"])
        return check()

    @public
    @auth_blp.arguments(PasswordResetCreateSchema)
    @auth_blp.response(204)
    @answers(410)
    def post(self, data):
        """Choose a new password with a reset token; every session ends, nobody is signed in"""
        credentials.reset_password(token=data["token"], password=data["password"], ip=request.remote_addr)


@auth_blp.route("/confirm-email-change")
class ConfirmEmailChange(MethodView):
    @public
    @auth_blp.arguments(TokenQueryArgsSchema, location="query")
    @auth_blp.response(200, StatusReadSchema)
    @auth_blp.alt_response(303, description="a browser, when EMAIL_ACTION_URL is set: to the app with the outcome")
    @answers(409, 410)
    def get(self, args):
        """Open the link mailed to the new address: the account switches to it (browsers get a page)"""
        def confirm() -> dict[str, str]:
            credentials.confirm_email_change(token=args["token"], ip=request.remote_addr)
            return {"status": "changed", "message": "Your account now uses this address."}

        return link_pages.link_page("change_email", confirm) if link_pages.wants_page() else confirm()


@me_blp.route("")
class Me(MethodView):
    @require()
    @me_blp.response(200, MeReadSchema)
    def get(self):
        """Read my profile"""
        return profile.profile_response(user_id=current_principal().user_id)

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
    @answers(409)
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


@me_blp.route("/security-events")
class MySecurityEvents(MethodView):
    @require()
    @me_blp.arguments(PageQueryArgsSchema, location="query")
    @me_blp.response(200, page_schema(SecurityEventReadSchema))
    def get(self, args):
        """List what happened to my sign-in methods (passkeys added, removed or blocked, claims voided)"""
        return security_events.list_events(user_id=current_principal().user_id, cursor=args["cursor"],
                                           limit=args["limit"]).as_response()


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
    @answers(409)
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


@keys_blp.route("/apple-app-site-association")
class AppleAppSiteAssociation(MethodView):
    @public
    @keys_blp.response(200, AppleAppSiteAssociationReadSchema)
    @answers(404)
    def get(self):
        """The iOS apps that may use this domain's passkeys and open its email links (404 when none is set)"""
        found = app_association.apple_app_site_association()
        if found is None:
            raise NotFound("No iOS app is configured (IOS_APP_IDS).", code="not_configured")
        return found


@keys_blp.route("/assetlinks.json")
class AssetLinks(MethodView):
    @public
    @keys_blp.response(200, AssetLinkReadSchema(many=True))
    @answers(404)
    def get(self):
        """The Android app that may use this domain's passkeys and open its links (404 when none is set)"""
        found = app_association.asset_links()
        if found is None:
            raise NotFound("No Android app is configured (ANDROID_APP_PACKAGE, ANDROID_APP_CERT_SHA256).",
                           code="not_configured")
        return found


@keys_blp.route("/jwks.json")
class Jwks(MethodView):
    @public
    @keys_blp.response(200, JwksReadSchema)
    def get(self):
        """Public keys that verify access tokens (JWK Set)"""
        return tokens.jwks()


blueprints = [auth_blp, me_blp, keys_blp, factor_routes.blp, passkey_routes.blp]
