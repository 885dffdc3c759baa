"""Object storage in a backup: every object copied into ``objects/`` and listed with its digest.

Works on any store that speaks the storage protocol (``backend.media.storage``: a local
folder or S3), through ``iter_keys``, ``open``, ``head`` and ``put`` only. The objects are
copied *after* the database snapshot, so every object the dumped rows name is there
unless it was deleted while the backup ran (the restore then reports it missing).
A restore is resumable: objects already in the target store with the backed-up size are
skipped, and a store holding anything the backup does not is refused.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

OBJECTS_DIR = "objects"
_CHUNK = 1 << 20


class ObjectStore(Protocol):
    """The part of the storage protocol a backup needs."""

    def iter_keys(self, prefix: str = "") -> Iterator[Any]: ...
    def open(self, key: str) -> BinaryIO: ...
    def head(self, key: str) -> Any: ...
    def put(self, key: str, data: BinaryIO, *, content_type: str) -> None: ...


class ObjectBackupError(RuntimeError):
    """Objects that cannot be backed up or restored, with the reason."""


def object_path(folder: Path, key: str) -> Path:
    """Where ``key`` lives inside a backup (keys are server-chosen, never ``..``)."""
    path = (folder / OBJECTS_DIR / key).resolve()
    if ".." in key.split("/") or not path.is_relative_to((folder / OBJECTS_DIR).resolve()):
        raise ObjectBackupError(f"not a storage key: {key!r}")
    return path


def copy_out(store: ObjectStore, folder: Path) -> dict[str, dict[str, Any]]:
    """Copy every object of ``store`` into ``folder``; returns key → size, sha256, content type."""
    entries: dict[str, dict[str, Any]] = {}
    for info in store.iter_keys(""):
        target = object_path(folder, info.key)
        target.parent.mkdir(parents=True, exist_ok=True)
        content_type = info.content_type or getattr(store.head(info.key), "content_type", None)
        digest, size = hashlib.sha256(), 0
        with store.open(info.key) as source, target.open("wb") as out:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        entries[info.key] = {"size": size, "sha256": digest.hexdigest(), "content_type": content_type}
    return entries


def verify(folder: Path, entries: dict[str, dict[str, Any]]) -> None:
    """Every listed object is in the backup with its size and digest (checked before any write)."""
    bad = []
    for key, entry in entries.items():
        path = object_path(folder, key)
        if not path.is_file() or path.stat().st_size != entry["size"] or sha256_of(path) != entry["sha256"]:
            bad.append(key)
    if bad:
        raise ObjectBackupError(f"{len(bad)} objects are missing or differ from the manifest: {sorted(bad)[:5]}")


def copy_in(store: ObjectStore, folder: Path, entries: dict[str, dict[str, Any]]) -> int:
    """Put every backed-up object into ``store``; returns how many were written (others were there)."""
    present = {info.key: info.size for info in store.iter_keys("")}
    foreign = sorted(set(present) - set(entries))
    if foreign:
        raise ObjectBackupError(f"the target store holds {len(foreign)} objects this backup does not "
                                f"(e.g. {foreign[0]}): restore into an empty store")
    written = 0
    for key, entry in sorted(entries.items()):
        if present.get(key) == entry["size"]:
            continue  # restored by an earlier, interrupted run
        with object_path(folder, key).open("rb") as data:
            store.put(key, data, content_type=entry["content_type"] or "application/octet-stream")
        written += 1
    stored = {info.key: info.size for info in store.iter_keys("")}
    differ = sorted(key for key, entry in entries.items() if stored.get(key) != entry["size"])
    if differ:
        raise ObjectBackupError(f"{len(differ)} objects did not arrive in the store: {differ[:5]}")
    return written


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()
