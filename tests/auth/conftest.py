"""Helpers for account tests: users, signed-in headers, a real SMTP server.

``make_user(...)`` and ``auth_headers(user)`` work inside the current app context (the
``client``/``db_session`` tests have one; committed tests push ``app.app_context()``).
"""
from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask

from backend.auth.models import User
from backend.auth.passwords import hash_password
from backend.auth.sessions import start_session
from backend.common.db import utcnow
from backend.extensions import db

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)


@pytest.fixture
def make_user(app: Flask) -> Callable[..., User]:
    """Create a user (committed in the current session); verified and active unless told otherwise."""

    def make(*, email: str | None = None, password: str | None = PASSWORD, role: str = "user",
             verified: bool = True, status: str = "active", **fields: Any) -> User:
        user = User(
            email=email or f"user{next(_counter)}-{id(fields) % 10000}@example.test",
            password_hash=hash_password(password) if password else None,
            email_verified_at=utcnow() if verified else None, role=role, status=status, **fields,
        )
        db.session.add(user)
        db.session.commit()
        return user

    return make


@pytest.fixture
def auth_headers(app: Flask) -> Callable[..., dict[str, str]]:
    """Bearer headers of a fresh session of ``user`` (the token body is in ``.tokens`` of the last call)."""

    def headers(user: User, *, device_name: str = "Test phone", platform: str = "ios") -> dict[str, str]:
        body = start_session(user=user, device_name=device_name, platform=platform, ip="127.0.0.1",
                             user_agent="pytest")
        headers.tokens = body  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {body['access_token']}"}

    return headers


def signed_in(client: Any, user: User, password: str = PASSWORD, **extra: Any) -> dict[str, str]:
    """Sign ``user`` in through the real login route; return bearer headers."""
    response = client.post("/v1/auth/login", json={"email": user.email, "password": password, **extra})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


@dataclass
class SmtpInbox:
    """Mail received by the local SMTP server."""

    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int = 1, timeout: float = 20.0) -> list[Message]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
        return list(self.messages)


class _Handler:
    def __init__(self, inbox: SmtpInbox):
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = message_from_bytes(envelope.original_content or envelope.content)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self.inbox.arrived:
            self.inbox.messages.append(message)
            self.inbox.arrived.notify_all()
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[SmtpInbox]:
    """A real SMTP server (aiosmtpd) on a free loopback port."""
    inbox = SmtpInbox(host="127.0.0.1", port=_free_port())
    controller = Controller(_Handler(inbox), hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def smtp_app(app: Flask, smtp_server: SmtpInbox, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The app configured to send mail through the local SMTP server."""
    monkeypatch.setitem(app.config, "MAIL_BACKEND", "smtp")
    monkeypatch.setitem(app.config, "SMTP_HOST", smtp_server.host)
    monkeypatch.setitem(app.config, "SMTP_PORT", smtp_server.port)
    return app
