"""Push fixtures: the local FCM v1 server and an app whose PUSH_BACKEND=fcm points at it."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from backend.app import create_app
from backend.auth.models import User
from backend.extensions import db
from tests.auth.conftest import auth_headers, make_user  # noqa: F401 - shared sign-in fixtures
from tests.conftest import fcm_app_settings
from tests.fakes.fcm_server import FakeFcmControl

SERVER_KEY = "test-server-key-0123456789abcdef"


@pytest.fixture(scope="session")
def app(database_url: str, services: Any, fake_fcm_server: FakeFcmControl) -> Flask:
    """The app under test for this package: pushes really go over HTTP to the fake FCM."""
    return create_app(fcm_app_settings(database_url, services.redis_url, fake_fcm_server,
                                       SERVER_API_KEYS=[SERVER_KEY]))


@pytest.fixture
def new_user(db_session: Any) -> Callable[..., User]:
    """Insert a user row directly (for service-level tests that need no sign-in)."""

    def make(**fields: Any) -> User:
        user = User(email=fields.pop("email", f"{uuid.uuid4().hex[:10]}@example.test"), **fields)
        db.session.add(user)
        db.session.commit()
        return user

    return make
