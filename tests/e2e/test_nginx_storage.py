"""The local store's signed uploads through the production nginx config (STORAGE_BACKEND=local)."""
from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest
from flask import Flask

from backend.media.storage import build_storage
from tests.e2e.test_nginx import call, stack  # noqa: F401 - the nginx → gunicorn stack of that module

pytestmark = pytest.mark.e2e
MiB = 1024 * 1024


def test_nginx_passes_a_12_mib_signed_upload_to_the_local_store(app: Flask, stack) -> None:  # noqa: F811
    store = build_storage(app.config)
    key = f"media/{uuid.uuid4()}/original"
    data = os.urandom(12 * MiB)  # over the API's 10m body limit, under a single-PUT upload's
    signed = store.presign_put(key, content_type="image/jpeg", size=len(data), expires_s=60)
    parts = urlsplit(signed.url)
    answer = call(stack["nginx"].port, "PUT", f"{parts.path}?{parts.query}", headers=signed.headers, body=data)
    assert answer.status == 200, answer.body[:300]
    assert store.head(key).size == len(data)
    store.delete_prefix(key.rsplit("/", 1)[0] + "/")


def test_nginx_refuses_a_storage_body_over_its_limit_before_gunicorn(app: Flask, stack) -> None:  # noqa: F811
    store = build_storage(app.config)
    signed = store.presign_put(f"media/{uuid.uuid4()}/original", content_type="image/jpeg", size=40 * MiB,
                               expires_s=60)
    parts = urlsplit(signed.url)
    with socket.create_connection(("127.0.0.1", stack["nginx"].port), timeout=10) as sock:
        sock.sendall(f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: localhost\r\n"
                     f"Content-Length: {40 * MiB}\r\nConnection: close\r\n\r\n".encode() + b"x" * 65536)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    assert raw.startswith(b"HTTP/1.1 413"), raw[:200]
