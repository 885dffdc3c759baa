"""Per-request plumbing: request IDs, input guards (type, depth, unstorable text and numbers), conditional GETs."""
from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from flask import Flask, Request, Response, current_app, g, request
from marshmallow import missing
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from backend.common.errors import ValidationFailed

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}  # DELETE: some routes take a body (e.g. a code)
F = TypeVar("F", bound=Callable[..., Any])
# Without one of these a GET cannot be answered 304/412/206, and make_conditional would only
# add a Date header, which gunicorn and nginx write themselves (gunicorn then sent two).
_CONDITIONAL_HEADERS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_UNMODIFIED_SINCE",
                        "HTTP_RANGE")


def accepts_any_body(view: F) -> F:
    """Mark a view that takes a non-JSON body (e.g. raw file bytes)."""
    view.accepts_any_body = True  # type: ignore[attr-defined]
    return view


def json_depth(value: Any) -> int:
    """Depth of nested containers in a parsed JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


# Text PostgreSQL cannot store: U+0000, and UTF-16 surrogates, which JSON's \uD800-style
# escapes can produce unpaired (they have no UTF-8 form, so psycopg2 fails to encode them).
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def unstorable_value(value: Any) -> str | None:
    """Why a parsed JSON value cannot be stored as sent ("text" or "number"), or None; no recursion."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _UNSTORABLE_TEXT.search(node):
                return "text"
        elif isinstance(node, float):
            if not math.isfinite(node):  # NaN, Infinity, or a literal like 1e999 that overflowed
                return "number"
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


# Byte strings without which a UTF-8 JSON body holds no unstorable text: JSON spells U+0000
# and surrogates only as escapes (raw control characters are not JSON), and raw surrogate
# bytes (which Python's decoder lets through) start with 0xED.
_TEXT_SUSPECTS = (b"\\u0000", b"\\ud", b"\\uD", b"\xed")


def _depth_and_numbers(value: Any, max_depth: int) -> tuple[bool, bool]:
    """(deeper than ``max_depth`` as ``json_depth`` counts, holds a non-finite float): one pass over containers."""
    level = [value] if isinstance(value, dict | list) else []
    depth, non_finite = 0, isinstance(value, float) and not math.isfinite(value)
    while level:
        depth += 1
        if depth > max_depth:
            return True, non_finite
        deeper = []
        for node in level:
            for child in node.values() if isinstance(node, dict) else node:
                # What json.loads makes is tested by exact class first: isinstance against a
                # union for every value made this walk ~100 µs of a 50-event ingest body (~35 now).
                kind = child.__class__
                if kind is dict or kind is list:
                    deeper.append(child)
                elif kind is float:
                    if not math.isfinite(child):
                        non_finite = True
                elif kind is not str and kind is not int and kind is not bool and isinstance(child, dict | list):
                    deeper.append(child)
        level = deeper
    return False, non_finite


def body_problems(raw: bytes, payload: Any, max_depth: int) -> tuple[bool, str | None]:
    """(nested deeper than ``max_depth``, ``unstorable_value``) of a parsed body, with text found in its bytes.

    One pass over the containers and a few substring searches of the raw body, instead
    of two walks over every parsed value (the hottest thing of a 50-event ingest batch);
    the full walk runs only when the bytes hint at bad text.
    """
    too_deep, non_finite = _depth_and_numbers(payload, max_depth)
    if b"\x00" in raw or any(suspect in raw for suspect in _TEXT_SUSPECTS):  # UTF-16/32, or maybe bad text
        return too_deep, unstorable_value(payload)
    return too_deep, "number" if non_finite else None


def _refuse_text(location: str) -> NoReturn:
    # Refused up front with a 422 rather than failing with a 500 wherever the text reaches
    # the database (psycopg2: "cannot contain NUL", "surrogates not allowed").
    raise ValidationFailed("Text may not contain NUL (U+0000) or unpaired surrogate characters.",
                           code="invalid_text", details={"location": location})


def _assign_request_id() -> None:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex


def _guard_json_body() -> None:
    """Reject bodies the API cannot read before any view or schema sees them."""
    if request.method not in _BODY_METHODS or not request.path.startswith("/v1/"):
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(getattr(view, "view_class", view), "accepts_any_body", False):
        return
    if not request.content_length and not request.headers.get("Transfer-Encoding"):
        return
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as application/json.")
    try:
        payload = request.get_json()
    except RecursionError as exc:
        raise BadRequest("The JSON body is nested too deeply.") from exc
    too_deep, problem = body_problems(request.get_data(cache=True), payload, current_app.config["MAX_JSON_DEPTH"])
    if too_deep:
        raise BadRequest("The JSON body is nested too deeply.")
    if problem == "number":  # not JSON (RFC 8259 has no NaN/Infinity), and JSONB refuses it
        raise BadRequest("JSON numbers must be finite: no NaN, Infinity or out-of-range values.")
    if problem == "text":
        _refuse_text("json")


def _guard_path_and_query() -> None:
    """Refuse text PostgreSQL cannot store in the path and query string of API requests."""
    if not request.path.startswith("/v1/"):
        return
    if _UNSTORABLE_TEXT.search(request.path):
        _refuse_text("path")
    if any(_UNSTORABLE_TEXT.search(key) or any(_UNSTORABLE_TEXT.search(value) for value in values)
           for key, values in request.args.lists()):
        _refuse_text("query")


def _finish_response(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    if (
        request.method in {"GET", "HEAD"}
        and response.status_code == 200
        and not response.is_streamed
        and response.mimetype == "application/json"
    ):
        # A weak validator over the exact body: clients and proxies revalidate cheaply.
        response.add_etag(weak=True)
        environ = request.environ
        if any(name in environ for name in _CONDITIONAL_HEADERS):
            response.make_conditional(request)
        response.headers.setdefault("Cache-Control", "private, no-cache")
    return response


def register_request_hooks(app: Flask) -> None:
    """Install request-ID, input-guard and conditional-response hooks."""
    app.before_request(_assign_request_id)
    app.before_request(_guard_path_and_query)
    app.before_request(_guard_json_body)
    app.after_request(_finish_response)


class GuardedJsonParser(FlaskParser):
    """webargs' parser reading the body ``_guard_json_body`` already parsed (Flask keeps it), not parsing it anew.

    For bodies the guard lets through unread (other paths, views that accept any body),
    ``get_json`` parses them here, and a body that is not JSON is a 400 as before.
    """

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            return missing
        return req.get_json()
