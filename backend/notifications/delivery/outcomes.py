"""The one FCM outcome classifier: what a provider answer means for its ledger row.

Every push (campaign, transactional, test send) is judged here, so a 429 without
Retry-After, an auth failure or a timeout means the same thing whatever sent it. The
lane then reacts to what concerns more than the row (prune the token, back off the
whole project, pause a campaign).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from backend.notifications.fcm.providers import Outcome, PushResult

MAX_ATTEMPTS = 4  # provider calls per row (500/503, auth, no answer, lost lease) before it is given up
RETRY_BASE = timedelta(seconds=20)
RETRY_CAP = timedelta(minutes=15)
DEFAULT_RETRY_AFTER = timedelta(seconds=60)
PRUNED = frozenset({Outcome.UNREGISTERED, Outcome.INVALID_TOKEN, Outcome.SENDER_MISMATCH})
# Worth another attempt later: FCM failed, or never answered (a resend carries the same
# collapse identity, so a phone that got the first copy shows one notification).
RETRIED = frozenset({Outcome.UNAVAILABLE, Outcome.INTERNAL, Outcome.UNKNOWN, Outcome.AUTH_ERROR})


@dataclass(frozen=True, slots=True)
class Decision:
    """The row's new status, FCM's message id, the error code and when to try again."""

    status: str
    message_id: str | None = None
    error_code: str | None = None
    retry_at: datetime | None = None
    quota_until: datetime | None = None  # a 429: the whole project waits until then


def classify(result: PushResult | None, *, attempts: int, at: datetime) -> Decision:
    """Decide one row from its provider answer; ``attempts`` counts this one."""
    if result is None:
        return Decision("pending", None, "no_result", at + _backoff(attempts)) if attempts < MAX_ATTEMPTS else \
            Decision("unknown", None, "no_result")
    outcome = result.outcome
    code = result.error_code or outcome.value
    if outcome is Outcome.SENT:
        return Decision("sent", result.message_id)
    if outcome is Outcome.QUOTA_EXCEEDED:
        # Not the row's fault: it never counts toward the attempt limit.
        wait = timedelta(seconds=result.retry_after) if result.retry_after else DEFAULT_RETRY_AFTER
        return Decision("pending", None, code, at + wait, quota_until=at + wait)
    if outcome in RETRIED:
        if attempts >= MAX_ATTEMPTS:
            return Decision("unknown" if outcome is Outcome.UNKNOWN else "failed", None, code)
        return Decision("pending", None, code, at + _backoff(attempts))
    return Decision("failed", None, code)  # dead or mismatched token, invalid message


def _backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter (half to full), capped."""
    return min(RETRY_CAP, RETRY_BASE * 2 ** max(0, attempts - 1)) * random.uniform(0.5, 1.0)
