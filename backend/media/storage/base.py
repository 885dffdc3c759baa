"""The object-storage protocol every backend speaks, and the shapes it returns.

Keys are chosen by the server (``media/<uuid>/...``); clients never name one. Uploads go
straight to the store through presigned requests and downloads through short-lived
signed URLs, so the API process never carries the bytes.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

# Server-chosen keys only: lower-case path segments, no dot-segments, no absolute paths.
SAFE_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9._-]*)*$")


class StorageError(RuntimeError):
    """The store could not do what was asked (unreachable, refused); callers retry later."""


class UploadNotFound(StorageError):
    """The multipart upload is unknown to the store (aborted, completed or never begun)."""


def check_key(key: str) -> str:
    """Refuse anything but a server-shaped key (no ``..``, no leading slash)."""
    if not SAFE_KEY.fullmatch(key) or ".." in key:
        raise ValueError(f"not a storage key: {key!r}")
    return key


@dataclass(frozen=True)
class PresignedRequest:
    """An HTTP request the client makes itself, straight to the store."""

    url: str
    method: str = "PUT"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredPart:
    """One part of a multipart upload already in the store."""

    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class ObjectInfo:
    """What the store knows of one object."""

    key: str
    size: int
    content_type: str | None = None


class Storage(Protocol):
    """Object storage: presigned uploads (single and multipart), signed reads, server I/O."""

    name: str

    def presign_put(self, key: str, *, content_type: str, size: int, expires_s: int) -> PresignedRequest:
        """A PUT the client sends the whole object with."""

    def create_multipart(self, key: str, *, content_type: str) -> str:
        """Begin a multipart upload; returns its upload id."""

    def presign_part(self, key: str, *, upload_id: str, part_number: int, expires_s: int) -> PresignedRequest:
        """A PUT for one part (1-based number) of a multipart upload."""

    def list_parts(self, key: str, *, upload_id: str) -> list[StoredPart]:
        """Parts stored so far, by number (raises UploadNotFound)."""

    def complete_multipart(self, key: str, *, upload_id: str, parts: list[StoredPart]) -> None:
        """Join the parts into the object at ``key``."""

    def abort_multipart(self, key: str, *, upload_id: str) -> None:
        """Drop a multipart upload and its parts (no error when already gone)."""

    def presign_get(self, key: str, *, expires_s: int, content_type: str | None = None,
                    filename: str | None = None) -> str:
        """A short-lived URL that reads one object (served as an attachment unless an image/video)."""

    def head(self, key: str) -> ObjectInfo | None:
        """Size and type of an object, or None when absent."""

    def open(self, key: str) -> BinaryIO:
        """A readable stream of the object (for processing and backups); close it."""

    def put(self, key: str, data: BinaryIO, *, content_type: str) -> None:
        """Store an object written by the server (variants, posters, playlists)."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many went."""

    def iter_keys(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` (backups copy the store with this and ``open``)."""
