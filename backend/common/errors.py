"""Domain errors and the one JSON error shape every response uses.

Services raise ``DomainError`` subclasses (no HTTP imports there); the handlers
registered here turn those, werkzeug's HTTP errors, dependency outages and anything
unexpected into ``{"error": {"code", "message", "details", "request_id"}}``.

Field errors follow one rule wherever they are found (the request parser, a schema
validator, a service's policy check): ``details.fields`` maps the field's name, as the
client sent it, to a list of messages. A nested field is a dotted path (``properties.color``,
``items.0.name``); the part of the request (body, query, path) is not in the key; errors
about the whole body are under ``_schema``.
"""
from __future__ import annotations

import logging
from typing import Any

import redis.exceptions
from flask import Flask, g, jsonify
from flask.typing import ResponseReturnValue
from marshmallow import Schema, fields
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A failure the client can act on; ``status`` is only a hint for the HTTP layer."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.details = details or {}


class ValidationFailed(DomainError):
    status, code = 422, "validation_failed"


class Unauthorized(DomainError):
    status, code = 401, "unauthorized"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class NotFound(DomainError):
    status, code = 404, "not_found"


class Conflict(DomainError):
    status, code = 409, "conflict"


class Gone(DomainError):
    status, code = 410, "gone"


class Misdirected(DomainError):
    """This server does not serve the path (another process does; a proxy should have routed it)."""

    status, code = 421, "misdirected_request"


class TooManyRequests(DomainError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = max(1, int(retry_after))


class ServiceUnavailable(DomainError):
    status, code = 503, "service_unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


# Stable codes for werkzeug's HTTP errors, by status.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    428: "precondition_required",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def flatten_field_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Field errors as ``{"dotted.name": [messages]}``, however deep marshmallow nested them."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            for name, found in flatten_field_errors(value, f"{prefix}.{key}" if prefix else str(key)).items():
                flat.setdefault(name, []).extend(found)
    elif isinstance(messages, list | tuple) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = list(messages)
    elif isinstance(messages, list | tuple):
        for value in messages:
            for name, found in flatten_field_errors(value, prefix).items():
                flat.setdefault(name, []).extend(found)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def _with_field_rule(details: dict[str, Any]) -> dict[str, Any]:
    if "fields" in details:
        return {**details, "fields": flatten_field_errors(details["fields"])}
    return details


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "stable machine-readable code"})
    message = fields.String(required=True, metadata={"description": "human-readable explanation"})
    details = fields.Dict(metadata={"description": "field errors or extra context"})
    request_id = fields.String(metadata={"description": "echo of X-Request-ID"})


class ErrorSchema(Schema):
    """The one error shape of the API."""

    error = fields.Nested(ErrorBodySchema, required=True)


def error_response(
    status: int, code: str, message: str, details: dict | None = None,
    headers: dict[str, str] | None = None,
) -> ResponseReturnValue:
    """Build a response in the common error shape."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "request_id": g.get("request_id", ""),
        }
    }
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _handle_domain_error(exc: DomainError) -> ResponseReturnValue:
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return error_response(exc.status, exc.code, exc.message, _with_field_rule(exc.details), headers)


def _handle_http_exception(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    details: dict[str, Any] = {}
    if "messages" in data:  # webargs/marshmallow errors, keyed by location first: the key drops it
        details = {"fields": flatten_field_errors(list(data["messages"].values())
                                                  if isinstance(data["messages"], dict) else data["messages"])}
    message = data.get("message") or exc.description or HTTP_CODES.get(status, "error")
    code = data.get("code") or HTTP_CODES.get(status, "http_error")
    headers = {}
    if status == 405 and exc.get_response().headers.get("Allow"):
        headers["Allow"] = exc.get_response().headers["Allow"]
    if status == 422 and details:
        message = "The request did not pass validation."
    return error_response(status, code, message, details, headers)


def _handle_database_down(exc: Exception) -> ResponseReturnValue:
    log.error("database unavailable: %s", exc.__class__.__name__, exc_info=exc)
    return error_response(
        503, "database_unavailable", "The database is unavailable; retry shortly.",
        headers={"Retry-After": "5"},
    )


def _handle_redis_down(exc: Exception) -> ResponseReturnValue:
    log.error("redis unavailable: %s", exc, exc_info=exc)
    return error_response(
        503, "queue_unavailable", "A backing service is unavailable; retry shortly.",
        headers={"Retry-After": "5"},
    )


def _handle_database_error(exc: sa_exc.DBAPIError) -> ResponseReturnValue:
    if exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return _handle_database_down(exc)
    return _handle_unexpected(exc)


def _handle_unexpected(exc: Exception) -> ResponseReturnValue:
    if isinstance(exc, HTTPException):
        return _handle_http_exception(exc)
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "Something went wrong on our side.")


def register_error_handlers(app: Flask) -> None:
    """Route every error through the common shape (after flask-smorest's own handler)."""
    app.register_error_handler(DomainError, _handle_domain_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(sa_exc.DBAPIError, _handle_database_error)
    app.register_error_handler(sa_exc.TimeoutError, _handle_database_down)  # pool exhausted
    app.register_error_handler(redis.exceptions.ConnectionError, _handle_redis_down)
    app.register_error_handler(redis.exceptions.TimeoutError, _handle_redis_down)
    app.register_error_handler(Exception, _handle_unexpected)
