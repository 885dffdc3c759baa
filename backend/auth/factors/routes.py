"""Sign-in factor routes under /v1/auth: Google/Apple, email codes, anonymous accounts, TOTP.

Sign-in routes never carry ``@idempotent``: their answers hold tokens, which must not be
stored. A bearer token of an anonymous account on a social or email-code sign-in means
"upgrade this account" (Firebase's linkWithCredential); other bearers are ignored there.
"""
from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from backend.auth.factors import anonymous, email_codes, social, totp
from backend.auth.factors.schemas import (
    AcceptedReadSchema,
    AnonymousCreateSchema,
    AnonymousUpgradeCreateSchema,
    EmailCodeRequestCreateSchema,
    EmailCodeVerifyCreateSchema,
    IdentityCreateSchema,
    IdentityReadSchema,
    MfaLoginCreateSchema,
    MfaStatusReadSchema,
    RecoveryCodesReadSchema,
    SocialSignInCreateSchema,
    TotpCodeCreateSchema,
    TotpConfirmCreateSchema,
    TotpEnrolmentReadSchema,
)
from backend.auth.models import User
from backend.auth.principal import load_principal
from backend.auth.schemas import TokenReadSchema, UserSummaryReadSchema
from backend.common.access import current_principal, public, require
from backend.common.idempotency import idempotent
from backend.common.openapi import answers
from backend.common.pagination import PageQueryArgsSchema, page_schema

blp = Blueprint("auth_factors", __name__, url_prefix="/v1/auth",
                description="Sign-in factors: Google and Apple, email codes, anonymous accounts, two-factor")
PROVIDER = "<any(google, apple):provider>"


def _session_info(data: dict[str, Any]) -> dict[str, Any]:
    """Where a new session comes from (the address after ProxyFix, never a client header)."""
    return {"device_name": data.get("device_name"), "platform": data.get("platform"),
            "ip": request.remote_addr, "user_agent": request.user_agent.string or None}


def _me() -> User:
    return anonymous.caller(current_principal())


def _anonymous_caller() -> User | None:
    """The anonymous account to upgrade, when the request carries its bearer token."""
    if not request.headers.get("Authorization"):
        return None
    user = anonymous.caller(load_principal("user"))  # a broken bearer is a 401, not a new account
    return user if user.is_anonymous else None


@blp.route(f"/social/{PROVIDER}")
class SocialSignIn(MethodView):
    @public
    @blp.arguments(SocialSignInCreateSchema)
    @blp.response(200, TokenReadSchema)
    @answers(401, 403, 409)
    def post(self, data: dict[str, Any], provider: str) -> dict[str, Any]:
        """Sign in with a Google or Apple ID token (creates the account when new)"""
        return social.sign_in_with_id_token(
            provider=provider, id_token=data["id_token"], nonce=data["nonce"], session=_session_info(data),
            anonymous_user=_anonymous_caller())


@blp.route("/identities")
class Identities(MethodView):
    @require()
    @blp.arguments(PageQueryArgsSchema, location="query")
    @blp.response(200, page_schema(IdentityReadSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List the Google and Apple accounts linked to mine"""
        return social.list_identities(user=_me(), cursor=args["cursor"], limit=args["limit"]).as_response()


@blp.route(f"/identities/{PROVIDER}")
class Identity(MethodView):
    @require()
    @idempotent
    @blp.arguments(IdentityCreateSchema)
    @blp.response(201, IdentityReadSchema)
    @answers(409)
    def post(self, data: dict[str, Any], provider: str) -> Any:
        """Link a Google or Apple account to mine"""
        return social.link_identity(user=_me(), provider=provider, id_token=data["id_token"],
                                             nonce=data["nonce"])

    @require()
    @blp.response(204)
    @answers(409)
    def delete(self, provider: str) -> None:
        """Unlink a Google or Apple account (refused when it is the last way to sign in)"""
        social.unlink_identity(user=_me(), provider=provider)


@blp.route("/email-code/request")
class EmailCodeRequest(MethodView):
    @public
    @blp.arguments(EmailCodeRequestCreateSchema)
    @blp.response(202, AcceptedReadSchema)
    def post(self, data: dict[str, Any]) -> dict[str, str]:
        """Email me a one-time sign-in code (same answer whether or not the account exists)"""
        email_codes.request_email_code(email=data["email"], ip=request.remote_addr)
        return {"message": "If the address can receive mail, a code is on its way."}


@blp.route("/email-code/verify")
class EmailCodeVerify(MethodView):
    @public
    @blp.arguments(EmailCodeVerifyCreateSchema)
    @blp.response(200, TokenReadSchema)
    @answers(401, 403, 409)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Sign in with an emailed code (creates the account when new)"""
        return email_codes.verify_email_code(email=data["email"], code=data["code"], session=_session_info(data),
                                              anonymous_user=_anonymous_caller())


@blp.route("/anonymous")
class Anonymous(MethodView):
    @public
    @blp.arguments(AnonymousCreateSchema)
    @blp.response(201, TokenReadSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Start an anonymous, device-only account"""
        return anonymous.start_anonymous(**_session_info(data))


@blp.route("/anonymous/upgrade")
class AnonymousUpgrade(MethodView):
    @require()
    @blp.arguments(AnonymousUpgradeCreateSchema)
    @blp.response(200, UserSummaryReadSchema)
    @answers(409)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Turn my anonymous account into a full one with email and password (same user id)"""
        return anonymous.upgrade_with_password(user=_me(), email=data["email"], password=data["password"])


@blp.route("/mfa")
class MfaStatus(MethodView):
    @require()
    @blp.response(200, MfaStatusReadSchema)
    def get(self) -> dict[str, Any]:
        """Whether two-factor is on, and how many recovery codes are left"""
        return totp.totp_status(user=_me())


@blp.route("/mfa/totp")
class Totp(MethodView):
    @require()
    @blp.response(201, TotpEnrolmentReadSchema)
    @answers(409)
    def post(self) -> dict[str, str]:
        """Start TOTP enrolment: a secret and an otpauth:// URI for the authenticator app"""
        return totp.start_totp(user=_me())

    @require()
    @blp.arguments(TotpCodeCreateSchema)
    @blp.response(204)
    @answers(409)
    def delete(self, data: dict[str, Any]) -> None:
        """Turn TOTP off (needs a fresh code or a recovery code)"""
        totp.disable_totp(user=_me(), code=data["code"])


@blp.route("/mfa/totp/confirm")
class TotpConfirm(MethodView):
    @require()
    @blp.arguments(TotpConfirmCreateSchema)
    @blp.response(200, RecoveryCodesReadSchema)
    @answers(409)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Turn TOTP on with a first code; returns 10 recovery codes, shown this once"""
        return {"enabled": True, "recovery_codes": totp.confirm_totp(user=_me(), code=data["code"])}


@blp.route("/mfa/recovery-codes")
class RecoveryCodes(MethodView):
    @require()
    @blp.arguments(TotpCodeCreateSchema)
    @blp.response(200, RecoveryCodesReadSchema)
    @answers(409)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Replace my recovery codes (needs a fresh code); the old ones stop working"""
        return {"enabled": True, "recovery_codes": totp.regenerate_recovery_codes(user=_me(), code=data["code"])}


@blp.route("/login/mfa")
class MfaLogin(MethodView):
    @public
    @blp.arguments(MfaLoginCreateSchema)
    @blp.response(200, TokenReadSchema)
    @answers(401, 403)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Finish a two-step sign-in with a TOTP code or a recovery code"""
        return totp.complete_mfa_login(mfa_token=data["mfa_token"], code=data["code"], ip=request.remote_addr)
