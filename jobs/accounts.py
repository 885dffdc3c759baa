"""Account jobs: mails whose timing must not tell whether an account exists, erasure, purges."""
from __future__ import annotations

from datetime import datetime

from backend.auth import housekeeping
from backend.auth.accounts import mail_verification_again
from backend.auth.credentials import mail_password_reset
from backend.auth.deletion import due_account_ids, erase_account


def erase_due_accounts() -> int:
    """Erase every account past its grace period (each in its own transaction); returns how many."""
    return sum(1 for user_id in due_account_ids() if erase_account(user_id=user_id))


def purge_expired_secrets() -> dict[str, int]:
    """Delete sign-in codes, challenges and one-time tokens long past expiry."""
    return housekeeping.purge_expired_secrets()


def send_password_reset(*, email: str, requested_at: str) -> bool:
    """Mail a reset link for a request made at ``requested_at`` when the address has an account."""
    return mail_password_reset(email=email, requested_at=datetime.fromisoformat(requested_at))


def send_verification_again(*, email: str, requested_at: str) -> bool:
    """Mail a new verification link for a request made at ``requested_at`` when the address awaits one."""
    return mail_verification_again(email=email, requested_at=datetime.fromisoformat(requested_at))
