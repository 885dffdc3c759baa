"""Who may call a route: every /v1 view declares it with exactly one of these.

``public`` (anyone), ``require(*roles)`` (a signed-in principal; with roles, one of
them), ``server_key`` (a server API key, or a staff token with one of ``roles``).
The principal is loaded by the auth domain's loader, registered at app creation as
``app.extensions["groundwork.principal_loader"]``; routes read it from ``g.principal``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar
from uuid import UUID

from flask import current_app, g, request
from flask_smorest import Blueprint

from backend.common.errors import Forbidden, Unauthorized

F = TypeVar("F", bound=Callable[..., Any])
ROLES = ("user", "moderator", "marketer", "analyst", "admin")
STAFF_ROLES = frozenset({"moderator", "marketer", "analyst", "admin"})


@dataclass(frozen=True)
class Principal:
    """The caller of a request, as established from its credentials."""

    kind: str  # "user" or "server"
    user_id: UUID | None = None
    role: str = "user"
    session_id: UUID | None = None
    claims: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AccessPolicy:
    """What a view requires; read by the route-table tests and the docs."""

    kind: str  # "public", "user", "server"
    roles: tuple[str, ...] = ()


def _mark(view: Callable[..., Any], policy: AccessPolicy) -> None:
    view._access_policy = policy  # type: ignore[attr-defined]


def policy_of(view: Callable[..., Any]) -> AccessPolicy | None:
    """The declared policy of a view function or MethodView method, if any."""
    return getattr(view, "_access_policy", None)


def current_principal() -> Principal:
    """The authenticated caller (raises 401 when there is none)."""
    principal = g.get("principal")
    if principal is None:
        raise Unauthorized("Sign in to continue.", code="not_authenticated")
    return principal


def _load(kind: str) -> Principal:
    loader = current_app.extensions.get("groundwork.principal_loader")
    if loader is None:
        raise Unauthorized("Authentication is not configured.", code="not_authenticated")
    principal = loader(kind)
    g.principal = principal
    g.principal_id = str(principal.user_id) if principal.user_id else f"server:{principal.claims.get('key_id', '')}"
    return principal


def optional_principal() -> Principal | None:
    """On a ``public`` route: the caller when the request carries credentials (bad ones: 401), else None."""
    if not request.headers.get("Authorization"):
        return None
    return _load("user")


def public(view: F) -> F:
    """Anyone may call this route."""
    _mark(view, AccessPolicy("public"))
    return view


def require(*roles: str) -> Callable[[F], F]:
    """A signed-in principal; with ``roles``, one of them (admin always passes)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = _load("user")
            if roles and principal.role not in roles and principal.role != "admin":
                raise Forbidden("Your role does not allow this.", code="forbidden_role")
            return view(*args, **kwargs)

        doc = Blueprint.doc(security=[{"bearerAuth": []}])
        wrapped = doc(wrapper)
        _mark(wrapped, AccessPolicy("user", tuple(roles)))
        return wrapped  # type: ignore[return-value]

    return decorator


def server_key(*staff_roles: str) -> Callable[[F], F]:
    """A server API key (X-API-Key), or a bearer token of a staff member in ``staff_roles``."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = _load("server")
            if principal.kind != "server" and principal.role not in (*staff_roles, "admin"):
                raise Forbidden("A server key or a staff role is required.", code="forbidden_role")
            return view(*args, **kwargs)

        doc = Blueprint.doc(security=[{"apiKey": []}, {"bearerAuth": []}])
        wrapped = doc(wrapper)
        _mark(wrapped, AccessPolicy("server", tuple(staff_roles)))
        return wrapped  # type: ignore[return-value]

    return decorator
