"""The demo staff admin ``make run`` creates once, through the accounts service."""
from __future__ import annotations

import sqlalchemy as sa

from backend.extensions import db


def ensure_demo_staff(*, email: str, password: str) -> str:
    """Create the demo staff admin unless an account with ``email`` exists; says which happened."""
    from backend.auth.models import User

    try:
        from backend.auth.services import create_staff_account
    except ImportError:
        return "not created: the accounts service (backend.auth.services) is not there yet"
    # An existing account is left alone: its password may have been changed in the console.
    if db.session.scalar(sa.select(User.id).where(User.email == email.lower())) is not None:
        return "exists"
    create_staff_account(email=email, password=password, role="admin")
    return "created"
