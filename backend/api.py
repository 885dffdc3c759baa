"""flask-smorest Api configured for Groundwork's error shape and security scheme."""
from __future__ import annotations

from http import HTTPStatus
from typing import Any

from apispec import BasePlugin
from flask import Flask
from flask_smorest import Api

from backend.common.docs import ASSETS_URL
from backend.common.errors import ErrorSchema

API_TITLE = "Groundwork API"
API_VERSION = "v1"


class GroundworkApi(Api):
    """Documents errors with the common shape; error handling is ours, not smorest's."""

    ERROR_SCHEMA = ErrorSchema
    # No catch-all "default" answer: each operation lists its real statuses, so a client
    # (and schemathesis' status-code conformance check) can tell documented from not.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self) -> None:  # backend.common.errors registers them
        return None


_BODY_METHODS = {"post", "put", "patch", "delete"}


class ErrorResponsesPlugin(BasePlugin):
    """Documents the error answers the stack gives any operation, all in the common shape.

    Each is a reference to flask-smorest's per-status response component (the Error
    schema), so clients and the fuzz tests see exactly which statuses to expect. What an
    operation's own logic answers beyond these it declares with
    ``backend.common.openapi.answers``.
    """

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **_: Any) -> None:
        for method, operation in (operations or {}).items():
            codes = {400, 429, 503}
            if method in _BODY_METHODS:
                codes |= {413, 415}
            if operation.get("security"):
                codes |= {401, 403}
            if path and "{" in path:
                codes.add(404)
            responses = operation.setdefault("responses", {})
            for code in sorted(codes):
                responses.setdefault(str(code), HTTPStatus(code).name)


def openapi_config() -> dict[str, object]:
    """flask-smorest settings: spec at /openapi.json, Swagger UI at /docs, local assets."""
    return {
        "API_TITLE": API_TITLE,
        "API_VERSION": API_VERSION,
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": ASSETS_URL,
        "OPENAPI_SWAGGER_UI_CONFIG": {"persistAuthorization": True, "displayRequestDuration": True},
        "API_SPEC_OPTIONS": {
            "info": {"description": "Accounts, media, push campaigns and analytics for mobile apps."},
            "components": {"securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }},
        },
    }


def init_api(app: Flask, api: Api) -> Api:
    """Bind the Api to the app with Groundwork's OpenAPI settings."""
    for key, value in openapi_config().items():
        app.config.setdefault(key, value)
    api.init_app(app, spec_kwargs={"extra_plugins": [ErrorResponsesPlugin()]})
    return api
