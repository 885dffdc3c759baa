"""Housekeeping jobs run from the periodic table."""
from __future__ import annotations

from backend.common.idempotency import purge_expired_keys
from backend.extensions import db


def purge_idempotency_keys() -> int:
    """Delete Idempotency-Key records past their replay window."""
    return purge_expired_keys(db.session)
