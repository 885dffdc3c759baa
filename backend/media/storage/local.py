"""Local-folder storage that speaks the same signed-URL protocol as S3, served by the app.

Objects live under ``<root>/objects/<key>``; multipart parts under
``<root>/uploads/<upload id>/``. Presigned requests point at ``/storage/<key>`` on this
app with an HMAC over (operation, key, expiry, constraints); the route in
``local_routes`` checks it before reading or writing a byte.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode

from backend.media.storage.base import (
    ObjectInfo,
    PresignedRequest,
    StoredPart,
    UploadNotFound,
    check_key,
)

CHUNK = 1024 * 1024


class LocalStorage:
    """A folder on this machine (the ``make run`` default)."""

    name = "local"

    def __init__(self, root: str, *, base_url: str, secret: str):
        self.root = Path(root).resolve()
        self.base_url = base_url.rstrip("/")
        self._secret = hashlib.sha256(b"groundwork.local-storage\0" + secret.encode()).digest()

    # -- signatures ---------------------------------------------------------------------

    def sign(self, params: dict[str, str]) -> str:
        """HMAC of the request's parameters (sorted, so the order in the URL does not matter)."""
        message = "\n".join(f"{k}={params[k]}" for k in sorted(params))
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()

    def verify(self, params: dict[str, str], signature: str) -> bool:
        """Whether ``signature`` matches ``params`` and the expiry has not passed."""
        try:
            expires = int(params.get("expires", "0"))
        except ValueError:
            return False
        return expires >= time.time() and hmac.compare_digest(self.sign(params), signature)

    def _url(self, key: str, params: dict[str, str], expires_s: int) -> str:
        params = {**params, "key": key, "expires": str(int(time.time()) + expires_s)}
        query = {k: v for k, v in params.items() if k != "key"}
        query["signature"] = self.sign(params)
        return f"{self.base_url}/storage/{key}?{urlencode(query)}"

    # -- paths --------------------------------------------------------------------------

    def object_path(self, key: str) -> Path:
        return self.root / "objects" / check_key(key)

    def _upload_dir(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise UploadNotFound(upload_id)
        return self.root / "uploads" / upload_id

    def _upload_meta(self, key: str, upload_id: str) -> dict[str, str]:
        try:
            meta = json.loads((self._upload_dir(upload_id) / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise UploadNotFound(upload_id) from exc
        if meta["key"] != key:
            raise UploadNotFound(upload_id)
        return meta

    # -- protocol -----------------------------------------------------------------------

    def presign_put(self, key: str, *, content_type: str, size: int, expires_s: int) -> PresignedRequest:
        url = self._url(check_key(key), {"op": "put", "content_type": content_type, "size": str(size)}, expires_s)
        return PresignedRequest(url=url, headers={"Content-Type": content_type})

    def create_multipart(self, key: str, *, content_type: str) -> str:
        upload_id = uuid.uuid4().hex
        folder = self._upload_dir(upload_id)
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(json.dumps({"key": check_key(key), "content_type": content_type}))
        return upload_id

    def presign_part(self, key: str, *, upload_id: str, part_number: int, expires_s: int) -> PresignedRequest:
        url = self._url(check_key(key), {"op": "part", "upload_id": upload_id, "part": str(part_number)}, expires_s)
        return PresignedRequest(url=url)

    def write_part(self, key: str, *, upload_id: str, part_number: int, stream: BinaryIO, limit: int) -> str:
        """Store one part from ``stream`` (called by the signed route); returns its ETag."""
        self._upload_meta(key, upload_id)
        target = self._upload_dir(upload_id) / f"{part_number:05d}"
        digest = _write_atomically(target, stream, limit)
        return digest

    def list_parts(self, key: str, *, upload_id: str) -> list[StoredPart]:
        self._upload_meta(key, upload_id)
        parts = []
        for path in sorted(self._upload_dir(upload_id).iterdir()):
            if path.name.isdigit():
                parts.append(StoredPart(number=int(path.name), size=path.stat().st_size, etag=_md5(path)))
        return parts

    def complete_multipart(self, key: str, *, upload_id: str, parts: list[StoredPart]) -> None:
        meta = self._upload_meta(key, upload_id)
        folder = self._upload_dir(upload_id)
        target = self.object_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".joining")
        with partial.open("wb") as out:
            for part in sorted(parts, key=lambda p: p.number):
                with (folder / f"{part.number:05d}").open("rb") as piece:
                    shutil.copyfileobj(piece, out, CHUNK)
        os.replace(partial, target)
        _write_type(target, meta["content_type"])
        shutil.rmtree(folder, ignore_errors=True)

    def abort_multipart(self, key: str, *, upload_id: str) -> None:
        try:
            self._upload_meta(key, upload_id)
        except UploadNotFound:
            return
        shutil.rmtree(self._upload_dir(upload_id), ignore_errors=True)

    def presign_get(self, key: str, *, expires_s: int, content_type: str | None = None,
                    filename: str | None = None) -> str:
        params = {"op": "get"}
        if content_type:
            params["content_type"] = content_type
        if filename:
            params["filename"] = filename
        return self._url(check_key(key), params, expires_s)

    def head(self, key: str) -> ObjectInfo | None:
        path = self.object_path(key)
        if not path.is_file():
            return None
        return ObjectInfo(key=key, size=path.stat().st_size, content_type=_read_type(path))

    def open(self, key: str) -> BinaryIO:
        return self.object_path(key).open("rb")

    def put(self, key: str, data: BinaryIO, *, content_type: str) -> None:
        target = self.object_path(key)
        _write_atomically(target, data, limit=None)
        _write_type(target, content_type)

    def write_object(self, key: str, *, stream: BinaryIO, limit: int, content_type: str) -> None:
        """Store a client's presigned PUT (called by the signed route)."""
        target = self.object_path(key)
        _write_atomically(target, stream, limit)
        _write_type(target, content_type)

    def delete_prefix(self, prefix: str) -> int:
        keys = [info.key for info in self.iter_keys(prefix)]
        for key in keys:
            path = self.object_path(key)
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".type").unlink(missing_ok=True)
        folder = self.root / "objects" / prefix.rstrip("/")
        if prefix and folder.is_dir() and folder.resolve().is_relative_to(self.root):
            shutil.rmtree(folder, ignore_errors=True)
        return len(keys)

    def iter_keys(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self.root / "objects"
        if not base.is_dir():
            return
        for dirpath, _dirs, files in os.walk(base):
            for name in sorted(files):
                if name.endswith((".type", ".partial", ".joining")):
                    continue
                path = Path(dirpath) / name
                key = path.relative_to(base).as_posix()
                if key.startswith(prefix):
                    yield ObjectInfo(key=key, size=path.stat().st_size, content_type=_read_type(path))


class TooLarge(Exception):
    """The body is longer than the signed request allows."""


def _write_atomically(target: Path, stream: BinaryIO, limit: int | None) -> str:
    """Copy ``stream`` to ``target`` via a temporary file; returns the MD5 (S3's ETag of a part)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.partial")
    digest, written = hashlib.md5(usedforsecurity=False), 0
    try:
        with partial.open("wb") as out:
            while chunk := stream.read(CHUNK):
                written += len(chunk)
                if limit is not None and written > limit:
                    raise TooLarge(f"more than {limit} bytes")
                digest.update(chunk)
                out.write(chunk)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return digest.hexdigest()


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_type(path: Path, content_type: str) -> None:
    path.with_name(path.name + ".type").write_text(content_type)


def _read_type(path: Path) -> str | None:
    try:
        return path.with_name(path.name + ".type").read_text()
    except OSError:
        return None
