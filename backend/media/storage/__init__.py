"""Object storage for media: the protocol, a local folder and S3, chosen by STORAGE_BACKEND.

``get_storage()`` returns the app's store, built on first use (nothing at import).
Backups list and copy every object with ``iter_keys()`` and ``open(key)``.
"""
from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from backend.media.storage.base import (
    ObjectInfo,
    PresignedRequest,
    Storage,
    StorageError,
    StoredPart,
    UploadNotFound,
)

__all__ = ["ObjectInfo", "PresignedRequest", "Storage", "StorageError", "StoredPart", "UploadNotFound",
           "build_storage", "get_storage"]


def build_storage(config: dict[str, Any]) -> Storage:
    """The store ``config`` names (STORAGE_BACKEND: local or s3)."""
    if config["STORAGE_BACKEND"] == "s3":
        import boto3
        from botocore.config import Config

        from backend.media.storage.s3 import S3Storage

        client = boto3.client(
            "s3", endpoint_url=config["S3_ENDPOINT_URL"] or None, region_name=config["S3_REGION"],
            config=Config(connect_timeout=2, read_timeout=30, retries={"max_attempts": 2},
                          signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        return S3Storage(client, bucket=config["S3_BUCKET"])
    from backend.media.storage.local import LocalStorage

    return LocalStorage(config["STORAGE_LOCAL_PATH"], base_url=config["PUBLIC_BASE_URL"],
                        secret=config["SECRET_KEY"])


def get_storage(app: Flask | None = None) -> Storage:
    """The app's store (one per app, made on first use)."""
    app = app or current_app
    store = app.extensions.get("groundwork.storage")
    if store is None:
        store = app.extensions["groundwork.storage"] = build_storage(app.config)
    return store
