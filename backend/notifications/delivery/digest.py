"""Digests (P11): pushes held back by quiet hours or a cap go out as one summary, not several.

When the window opens, every held row of a device becomes due at the same instant, so
one claim sees them together. For categories that ask for it (``PUSH_DIGEST_CATEGORIES``)
the rows of one device that were held and are now sendable are folded into one push: the
newest entry's, titled with the count. The folded rows ride on that push: they are
recorded with its answer (``error_code`` 'digest' when sent), so a resend after a crash
is the same summary with the same collapse identity. The inbox keeps every entry.
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from backend.notifications.delivery import transactional
from backend.notifications.fcm.providers import OutgoingPush
from backend.notifications.models import Notification

HELD = frozenset({"quiet_hours", "frequency_cap"})  # reasons a row was deferred
TITLE_LIMIT = 200
BODY_LIMIT = 1000


@dataclass
class Held:
    """A sendable row that had been held back, with its entry."""

    row_id: int
    device_id: uuid.UUID
    token: str
    entry: Notification


def fold(held: Sequence[Held], *, now: datetime) -> dict[int, tuple[OutgoingPush, list[int]]]:
    """Per device with two or more held rows: the summary push (keyed by the newest row) and the rows it carries."""
    by_device: dict[uuid.UUID, list[Held]] = {}
    for item in held:
        by_device.setdefault(item.device_id, []).append(item)
    folded: dict[int, tuple[OutgoingPush, list[int]]] = {}
    for items in by_device.values():
        if len(items) < 2:
            continue
        items.sort(key=lambda h: (h.entry.created_at, h.row_id))
        newest = items[-1]
        push = summary(newest.entry, [h.entry for h in items], key=str(newest.row_id), token=newest.token, now=now)
        folded[newest.row_id] = (push, [h.row_id for h in items[:-1]])
    return folded


def summary(newest: Notification, entries: Sequence[Notification], *, key: str, token: str,
            now: datetime) -> OutgoingPush:
    """One push standing for ``entries`` (oldest first): the count as title, their titles as body."""
    base = transactional.compose(newest, key=key, token=token, now=now)
    titles = [e.title or e.body or "" for e in entries]
    data = dict(base.data)
    data["digest"] = str(len(entries))
    data["notification_ids"] = ",".join(str(e.id) for e in entries)  # the app opens the inbox on these
    return OutgoingPush(
        key=key, token=token, title=f"{len(entries)} new notifications"[:TITLE_LIMIT],
        body=" · ".join(t for t in reversed(titles) if t)[:BODY_LIMIT] or None, image=None, data=data,
        deep_link=base.deep_link, ttl_seconds=base.ttl_seconds, priority=base.priority, collapse_key=None,
        silent=False, badge=base.badge, analytics_label=f"tx_{newest.category}_digest", collapse_id=newest.id.hex)
