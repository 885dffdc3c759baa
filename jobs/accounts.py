"""Account jobs: erase accounts past their deletion grace period, purge expired secrets."""
from __future__ import annotations

from backend.auth import housekeeping
from backend.auth.deletion import due_account_ids, erase_account


def erase_due_accounts() -> int:
    """Erase every account past its grace period (each in its own transaction); returns how many."""
    return sum(1 for user_id in due_account_ids() if erase_account(user_id=user_id))


def purge_expired_secrets() -> dict[str, int]:
    """Delete sign-in codes, challenges and one-time tokens long past expiry."""
    return housekeeping.purge_expired_secrets()
