"""Cursor (keyset) pagination shared by every list endpoint.

A cursor is the signed position of the last item served: opaque to clients,
tamper-evident, and stable while rows are inserted (no OFFSET drift).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeSerializer
from marshmallow import Schema, fields, post_load, validate
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from backend.common.errors import ValidationFailed

T = TypeVar("T")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class PageQueryArgsSchema(Schema):
    """`cursor` and `limit` query arguments (limit above the cap is clamped)."""

    cursor = fields.String(load_default=None, metadata={"description": "opaque cursor from `next_cursor`"})
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1),
        metadata={"description": f"items per page, at most {MAX_LIMIT}"},
    )

    @post_load
    def _cap(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["limit"] = min(data["limit"], MAX_LIMIT)
        return data


_PAGE_SCHEMAS: dict[type[Schema], type[Schema]] = {}


def page_schema(item_schema: type[Schema]) -> type[Schema]:
    """The response schema of a page of ``item_schema`` (one class per item schema)."""
    if item_schema not in _PAGE_SCHEMAS:
        name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
        _PAGE_SCHEMAS[item_schema] = type(name, (Schema,), {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "next_cursor": fields.String(allow_none=True),
            "next": fields.String(allow_none=True, metadata={"description": "URL of the next page"}),
        })
    return _PAGE_SCHEMAS[item_schema]


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None

    def as_response(self) -> dict[str, Any]:
        """Items plus the cursor and a ready-made link to the next page."""
        next_url = None
        if self.next_cursor:
            args = request.args.to_dict()
            args["cursor"] = self.next_cursor
            next_url = f"{request.base_url}?{urlencode(args)}"
        return {"items": self.items, "next_cursor": self.next_cursor, "next": next_url}


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="groundwork.cursor")


def _encode(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value) if isinstance(value, uuid.UUID) else value


def _decode(column: InstrumentedAttribute, raw: Any) -> Any:
    python_type = column.type.python_type
    if python_type is datetime:
        return datetime.fromisoformat(raw)
    if python_type is uuid.UUID:
        return uuid.UUID(raw)
    return python_type(raw)


def paginate(
    session: Any, stmt: Select, *, order: tuple[InstrumentedAttribute, InstrumentedAttribute],
    cursor: str | None, limit: int, descending: bool = True,
) -> Page:
    """Run ``stmt`` ordered by ``order`` (a sort column then a unique tie-breaker)."""
    sort_col, tie_col = order
    if cursor:
        try:
            raw_sort, raw_tie = _serializer().loads(cursor)
            after = (_decode(sort_col, raw_sort), _decode(tie_col, raw_tie))
        except (BadSignature, ValueError, TypeError) as exc:
            raise ValidationFailed("The cursor is not valid.", code="invalid_cursor") from exc
        if descending:
            stmt = stmt.where(or_(sort_col < after[0], and_(sort_col == after[0], tie_col < after[1])))
        else:
            stmt = stmt.where(or_(sort_col > after[0], and_(sort_col == after[0], tie_col > after[1])))
    ordering = (sort_col.desc(), tie_col.desc()) if descending else (sort_col.asc(), tie_col.asc())
    rows = list(session.scalars(stmt.order_by(*ordering).limit(limit + 1)))
    items, more = rows[:limit], len(rows) > limit
    next_cursor = None
    if more:
        last = items[-1]
        next_cursor = _serializer().dumps(
            [_encode(getattr(last, sort_col.key)), _encode(getattr(last, tie_col.key))]
        )
    return Page(items=items, next_cursor=next_cursor)
