"""How an operation documents the error statuses it really answers.

Every operation gets the statuses the stack itself can give (see ``backend.api``): 400,
429 and 503 always; 413 and 415 with a body; 401 and 403 behind a sign-in; 404 with a
path parameter; 422 with parsed arguments. What only the operation's own logic answers
(a 409 conflict, a 410 for a used link, a 403 on a public route) it declares with
``@answers``, so the OpenAPI document lists exactly what a client can receive.
"""
from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from http import HTTPStatus
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def answers(*statuses: int) -> Callable[[F], F]:
    """Document that the view answers these error statuses, each in the common error shape.

    Unlike ``Blueprint.doc`` it adds no wrapper around the view: the request path stays
    as short as it was.
    """
    names = {str(int(status)): HTTPStatus(status).name for status in statuses}

    def decorator(view: F) -> F:
        apidoc = deepcopy(getattr(view, "_apidoc", {}))
        manual = apidoc.setdefault("manual_doc", {})
        manual.setdefault("responses", {}).update(names)
        view._apidoc = apidoc  # type: ignore[attr-defined]
        return view

    return decorator
