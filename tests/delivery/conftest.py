"""Delivery fixtures: the app sends over HTTP to the local FCM v1 server."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from backend.app import create_app
from tests.conftest import app_settings
from tests.fakes.fcm_server import FakeFcmControl, running_fake_fcm


@pytest.fixture(scope="session")
def fake_fcm_server() -> Iterator[FakeFcmControl]:
    with running_fake_fcm(project_id="groundwork-delivery") as fake:
        yield fake


@pytest.fixture
def fake_fcm(fake_fcm_server: FakeFcmControl) -> FakeFcmControl:
    """The fake FCM server, emptied of messages and counters for this test."""
    fake_fcm_server.reset()
    return fake_fcm_server


@pytest.fixture(scope="session")
def app(database_url: str, services: Any, fake_fcm_server: FakeFcmControl) -> Flask:
    """The app under test: PUSH_BACKEND=fcm pointed at the fake."""
    return create_app(app_settings(
        database_url, services.redis_url, PUSH_BACKEND="fcm",
        FCM_CREDENTIALS_FILE=fake_fcm_server.credentials_path, FCM_ENDPOINT=fake_fcm_server.base_url))
