"""Media's domain errors (no HTTP here; ``status`` is a hint for the error handler)."""
from __future__ import annotations

from backend.common.errors import Conflict, DomainError, NotFound


class FileTooLarge(DomainError):
    status, code = 413, "file_too_large"


class QuotaExceeded(DomainError):
    status, code = 409, "quota_exceeded"


class MediaNotFound(NotFound):
    code = "media_not_found"


class WrongState(Conflict):
    code = "media_wrong_state"


class MediaRejected(Exception):
    """The upload is not acceptable (wrong type, too big, hostile); ``reason`` is shown to the app."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
