"""Account jobs: erase accounts whose deletion grace period is over."""
from __future__ import annotations

from backend.auth.deletion import due_account_ids, erase_account


def erase_due_accounts() -> int:
    """Erase every account past its grace period (each in its own transaction); returns how many."""
    return sum(1 for user_id in due_account_ids() if erase_account(user_id=user_id))
