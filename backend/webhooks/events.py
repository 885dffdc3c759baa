"""The event types an endpoint can subscribe to; other domains emit only these."""
from __future__ import annotations

EVENT_TYPES: dict[str, str] = {
    "media.ready": "a media item finished processing and can be served",
    "media.failed": "a media item was refused or could not be processed (reason included)",
    "campaign.finished": "a push campaign finished sending (final statistics included)",
    "webhook.test": "sent on request to check an endpoint",
}


def is_event_type(name: str) -> bool:
    """Whether ``name`` is a declared event type."""
    return name in EVENT_TYPES
