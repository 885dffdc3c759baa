"""Per-category push preferences and quiet hours, in the user's own time zone."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.common.errors import ValidationFailed
from backend.common.locales import is_time_zone
from backend.notifications.delivery.policy import quiet_hours_end
from backend.notifications.models import CATEGORIES, Device, NotificationPreference, QuietHours

# Receipts, security alerts, password resets: a user cannot turn these off.
MANDATORY = frozenset({"transactional"})


@dataclass(frozen=True)
class QuietWindow:
    """A nightly quiet window: local start/end (end may be past midnight) in ``zone``."""

    start: time
    end: time
    zone: str

    def contains(self, moment: datetime) -> bool:
        """True when ``moment`` (aware) falls inside the window in the user's zone."""
        return quiet_hours_end(self.start, self.end, self.zone, moment) is not None

    def ends_after(self, moment: datetime) -> datetime:
        """The first instant at or after ``moment`` outside the window (the delivery policy's rule)."""
        return quiet_hours_end(self.start, self.end, self.zone, moment) or moment


def get_preferences(session: Session, *, user_id: uuid.UUID) -> dict[str, bool]:
    """Every category with whether pushes of it are on (absent means on)."""
    stored = dict(session.execute(
        select(NotificationPreference.category, NotificationPreference.enabled)
        .where(NotificationPreference.user_id == user_id)
    ).all())
    return {category: category in MANDATORY or stored.get(category, True) for category in CATEGORIES}


def set_preferences(session: Session, *, user_id: uuid.UUID, categories: dict[str, bool]) -> None:
    """Turn categories on or off (transactional stays on); does not commit."""
    for category, enabled in categories.items():
        if category not in CATEGORIES:
            raise ValidationFailed("Unknown category.", code="unknown_category", details={"category": category})
        if category in MANDATORY and not enabled:
            raise ValidationFailed("Transactional notifications cannot be turned off.",
                                   code="category_mandatory", details={"category": category})
        stmt = insert(NotificationPreference).values(user_id=user_id, category=category, enabled=enabled)
        session.execute(stmt.on_conflict_do_update(
            index_elements=["user_id", "category"], set_={"enabled": enabled, "updated_at": stmt.excluded.updated_at}
        ))


def category_enabled(session: Session, *, user_id: uuid.UUID, category: str) -> bool:
    """Whether this user takes pushes of ``category``."""
    if category in MANDATORY:
        return True
    enabled = session.scalar(select(NotificationPreference.enabled).where(
        NotificationPreference.user_id == user_id, NotificationPreference.category == category))
    return enabled is not False


def set_quiet_hours(
    session: Session, *, user_id: uuid.UUID, start: time | None, end: time | None, time_zone: str | None
) -> None:
    """Set (or with no start/end, clear) the user's quiet window; does not commit."""
    existing = session.get(QuietHours, user_id)
    if start is None or end is None:
        if start is not None or end is not None:
            raise ValidationFailed("Give both start and end, or neither.", code="quiet_hours_incomplete")
        if existing is not None:
            session.delete(existing)
        return
    if start == end:
        raise ValidationFailed("Quiet hours must not start and end at the same time.", code="quiet_hours_empty")
    if time_zone is not None and not is_time_zone(time_zone):
        raise ValidationFailed("Unknown time zone.", code="invalid_time_zone", details={"time_zone": time_zone})
    if existing is None:
        existing = QuietHours(user_id=user_id)
        session.add(existing)
    existing.start_local, existing.end_local, existing.time_zone = start, end, time_zone


def user_zone(session: Session, *, user_id: uuid.UUID) -> str:
    """The zone a user lives in: their most recently seen device's, else their profile's."""
    zone = session.scalar(select(Device.time_zone).where(Device.user_id == user_id)
                          .order_by(Device.last_seen_at.desc()).limit(1))
    return zone or session.scalar(select(User.time_zone).where(User.id == user_id)) or "UTC"


def quiet_window(session: Session, *, user_id: uuid.UUID) -> QuietWindow | None:
    """The user's quiet window with its effective zone, if they set one."""
    row = session.get(QuietHours, user_id)
    if row is None:
        return None
    return QuietWindow(row.start_local, row.end_local, row.time_zone or user_zone(session, user_id=user_id))
