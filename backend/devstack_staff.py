"""The demo staff admin ``make run`` creates once, through the accounts service."""
from __future__ import annotations

from backend.auth.accounts import create_staff_account, find_by_email


def ensure_demo_staff(*, email: str, password: str) -> str:
    """Create the demo staff admin unless an account with ``email`` exists; says which happened."""
    # An existing account is left alone: its password may have been changed since.
    if find_by_email(email) is not None:
        return "exists"
    create_staff_account(email=email, password=password, role="admin")
    return "created"
