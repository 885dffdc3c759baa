"""A lane's heartbeat: the claims it holds keep their lease while their requests are out.

A claim is committed 'sending' before the provider is called; the reconciler gives a
claim's rows back to the queue when its lease (``PUSH_LEASE_S``) runs out, because a lane
that died mid-send never records them. A lane that is merely slow (FCM answering late, a
starved machine) must not lose its rows that way, or they would be sent a second time
while the first requests are still out. So the lane renews the lease of every claim it
holds, every third of the lease, from the loop that waits for the answers. A dead lane
stops renewing and its rows come back within one lease; a lane stuck for ``MAX_HOLD``
stops renewing too, so nothing is held forever.
"""
from __future__ import annotations

import concurrent.futures
import time
import uuid
from datetime import timedelta
from typing import TypeVar

from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.common.db import utcnow
from backend.notifications.delivery.ledger import RENEW_SQL

T = TypeVar("T")

DEFAULT_LEASE = timedelta(seconds=45)
MAX_HOLD = timedelta(minutes=10)  # far beyond any batch (10 s request timeout, two quick retries)


def lease_of(app: Flask) -> timedelta:
    """The configured lease (``PUSH_LEASE_S``)."""
    return timedelta(seconds=float(app.config.get("PUSH_LEASE_S") or DEFAULT_LEASE.total_seconds()))


class LeaseKeeper:
    """Renews the leases of the claims one lane holds, from the thread that waits for their answers."""

    def __init__(self, session: Session, *, lease: timedelta, max_hold: timedelta = MAX_HOLD) -> None:
        self.session = session
        self.every = lease.total_seconds() / 3
        self.max_hold = max_hold.total_seconds()
        self.held: dict[uuid.UUID, tuple[float, float]] = {}  # token → (claimed, last renewed), monotonic
        self.renewals = 0

    def hold(self, token: uuid.UUID) -> None:
        """A claim was just committed: its lease starts now."""
        now = time.monotonic()
        self.held[token] = (now, now)

    def release(self, token: uuid.UUID) -> None:
        """The claim's results are recorded (or it was given up): nothing more to renew."""
        self.held.pop(token, None)

    def wait(self, future: concurrent.futures.Future[T]) -> T:
        """``future.result()``, renewing the held leases whenever one is a third of a lease old."""
        while True:
            try:
                return future.result(timeout=self._until_due())
            except concurrent.futures.TimeoutError:
                self.renew_due()

    def renew_due(self) -> int:
        """Renew every held claim (one statement) if any is due; returns the rows renewed."""
        now = time.monotonic()
        live = {t: v for t, v in self.held.items() if now - v[0] < self.max_hold}
        if not live or all(now - renewed < self.every for _claimed, renewed in live.values()):
            return 0
        rows = self.session.execute(text(RENEW_SQL), {"tokens": [str(t) for t in live], "now": utcnow()}).rowcount
        self.session.commit()
        for token, (claimed, _renewed) in live.items():
            self.held[token] = (claimed, now)
        self.renewals += 1
        return rows

    def _until_due(self) -> float:
        now = time.monotonic()
        live = [renewed for claimed, renewed in self.held.values() if now - claimed < self.max_hold]
        if not live:
            return self.every
        return max(0.05, min(live) + self.every - now)
