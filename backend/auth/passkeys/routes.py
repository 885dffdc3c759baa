"""Passkey routes under /v1/auth/passkeys: add one to my account, sign in with one, manage mine."""
from __future__ import annotations

import uuid
from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from backend.auth.factors.anonymous import caller
from backend.auth.models import User
from backend.auth.passkeys import registration, services, sign_in
from backend.auth.passkeys.credentials import passkey_view
from backend.auth.passkeys.schemas import (
    PasskeyCreateSchema,
    PasskeyOptionsReadSchema,
    PasskeyReadSchema,
    PasskeyRegistrationOptionsCreateSchema,
    PasskeySignInCreateSchema,
    PasskeySignInOptionsCreateSchema,
    PasskeyUpdateSchema,
)
from backend.auth.schemas import TokenReadSchema
from backend.common.access import current_principal, public, require
from backend.common.openapi import answers
from backend.common.pagination import PageQueryArgsSchema, page_schema

blp = Blueprint("passkeys", __name__, url_prefix="/v1/auth/passkeys",
                description="Passkeys (WebAuthn): Face ID, fingerprint or device PIN sign-in")


def _me() -> User:
    return caller(current_principal())


@blp.route("/registration/options")
class RegistrationOptions(MethodView):
    @require()
    @blp.arguments(PasskeyRegistrationOptionsCreateSchema)
    @blp.response(200, PasskeyOptionsReadSchema)
    @answers(409)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Start adding a passkey: options for the phone's prompt (needs a recent sign-in or the password)"""
        return {"options": registration.registration_options(
            user=_me(), session_id=current_principal().session_id, password=data["password"],
            ip=request.remote_addr)}


@blp.route("")
class Passkeys(MethodView):
    @require()
    @blp.arguments(PageQueryArgsSchema, location="query")
    @blp.response(200, page_schema(PasskeyReadSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List my passkeys"""
        page = services.list_passkeys(user=_me(), cursor=args["cursor"], limit=args["limit"])
        page.items = [passkey_view(p) for p in page.items]
        return page.as_response()

    @require()
    @blp.arguments(PasskeyCreateSchema)
    @blp.response(201, PasskeyReadSchema)
    @answers(409)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Finish adding a passkey with the phone's attestation"""
        return registration.register_passkey(user=_me(), credential=data["credential"],
                                             device_name=data["device_name"], ip=request.remote_addr)


@blp.route("/<uuid:passkey_id>")
class Passkey(MethodView):
    @require()
    @blp.arguments(PasskeyUpdateSchema)
    @blp.response(200, PasskeyReadSchema)
    def patch(self, data: dict[str, Any], passkey_id: uuid.UUID) -> dict[str, Any]:
        """Rename one of my passkeys"""
        return services.rename_passkey(user=_me(), passkey_id=passkey_id, device_name=data["device_name"])

    @require()
    @blp.response(204)
    @answers(409)
    def delete(self, passkey_id: uuid.UUID) -> None:
        """Remove one of my passkeys (refused when it is the last way to sign in)"""
        services.remove_passkey(user=_me(), passkey_id=passkey_id, ip=request.remote_addr)


@blp.route("/sign-in/options")
class SignInOptions(MethodView):
    @public
    @blp.arguments(PasskeySignInOptionsCreateSchema)
    @blp.response(200, PasskeyOptionsReadSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Start a passkey sign-in: for an account by email, or discoverable with no email"""
        return {"options": sign_in.sign_in_options(email=data["email"])}


@blp.route("/sign-in")
class SignIn(MethodView):
    @public
    @blp.arguments(PasskeySignInCreateSchema)
    @blp.response(200, TokenReadSchema)
    @answers(401, 403)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Sign in with the phone's passkey assertion (no two-factor step follows)"""
        session = {"device_name": data["device_name"], "platform": data["platform"], "ip": request.remote_addr,
                   "user_agent": request.user_agent.string or None}
        return sign_in.sign_in_with_passkey(credential=data["credential"], session=session)

