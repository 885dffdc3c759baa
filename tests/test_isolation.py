"""Each test's writes vanish with its transaction, even when a service commits."""
from __future__ import annotations

from sqlalchemy import func, select

from backend.common.models import IdempotencyKey
from backend.extensions import db

MARKER = "isolation-marker"


def _count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(IdempotencyKey)
                                 .where(IdempotencyKey.key == MARKER))


def test_a_committed_row_exists_inside_its_test(app, db_session):
    with app.app_context():
        db.session.add(IdempotencyKey(scope="t", key=MARKER, request_hash="0" * 64))
        db.session.commit()  # a service's commit: stays inside the outer transaction
        db.session.rollback()  # and a later rollback does not lose it
    assert _count(app) == 1


def test_the_row_committed_by_the_previous_test_is_gone(app, db_session):
    assert _count(app) == 0
