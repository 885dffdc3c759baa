"""flask-jwt-extended's blocklist, claims and error callbacks: revocation, roles, the common error shape.

The API's own principal loader (``backend.auth.principal``) verifies tokens through the
same library functions and the same live-state check, with a per-worker memo in front;
these callbacks make any view that uses the library's decorators (``@jwt_required``)
behave the same way: a revoked or outdated session is refused with the reason
(``session_revoked``, ``password_changed``, ``account_suspended``…), the role comes from
the live user state rather than the token, and every refusal is a 401 in the common shape.
"""
from __future__ import annotations

import uuid
from typing import Any

from flask import g
from flask.typing import ResponseReturnValue

from backend.auth.principal import check_live_state, current_state
from backend.common.errors import Unauthorized, error_response
from backend.extensions import jwt_manager


def _refusal(code: str, message: str) -> ResponseReturnValue:
    return error_response(401, code, message)


@jwt_manager.token_in_blocklist_loader
def _revoked(header: dict[str, Any], claims: dict[str, Any]) -> bool:
    """Revoked when the session ended, the user is suspended or gone, or signed out everywhere."""
    try:
        user_state, session_state = current_state(uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"]))
        check_live_state(claims, user_state, session_state)
    except (KeyError, ValueError, TypeError):
        g.jwt_refusal = Unauthorized("The access token is not valid.", code="token_invalid")
        return True
    except Unauthorized as refusal:
        g.jwt_refusal = refusal
        return True
    g.jwt_role = user_state["role"]  # type: ignore[index]
    return False


@jwt_manager.token_verification_loader
def _has_our_claims(header: dict[str, Any], claims: dict[str, Any]) -> bool:
    """An access token of ours: the claims we always sign (the library requires only ``sub``)."""
    from backend.auth.tokens import REQUIRED_CLAIMS

    return claims.get("typ") == "access" and all(name in claims for name in REQUIRED_CLAIMS)


@jwt_manager.revoked_token_loader
def _revoked_answer(header: dict[str, Any], claims: dict[str, Any]) -> ResponseReturnValue:
    refusal = g.pop("jwt_refusal", None) or Unauthorized("This session was signed out; sign in again.",
                                                         code="session_revoked")
    return _refusal(refusal.code, refusal.message)


@jwt_manager.expired_token_loader
def _expired_answer(header: dict[str, Any], claims: dict[str, Any]) -> ResponseReturnValue:
    return _refusal("token_expired", "The access token has expired; refresh it.")


@jwt_manager.invalid_token_loader
def _invalid_answer(reason: str) -> ResponseReturnValue:
    return _refusal("token_invalid", "The access token is not valid.")


@jwt_manager.token_verification_failed_loader
def _unverified_answer(header: dict[str, Any], claims: dict[str, Any]) -> ResponseReturnValue:
    return _refusal("token_invalid", "This is not an access token.")


@jwt_manager.unauthorized_loader
def _missing_answer(reason: str) -> ResponseReturnValue:
    return _refusal("not_authenticated", "Sign in to continue.")


@jwt_manager.needs_fresh_token_loader
def _stale_answer(header: dict[str, Any], claims: dict[str, Any]) -> ResponseReturnValue:
    return _refusal("fresh_sign_in_required", "Sign in again to continue.")


@jwt_manager.user_lookup_error_loader
def _no_user_answer(header: dict[str, Any], claims: dict[str, Any]) -> ResponseReturnValue:
    return _refusal("session_revoked", "This session was signed out; sign in again.")
