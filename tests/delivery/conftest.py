"""Delivery fixtures: the app sends over HTTP to the local FCM v1 server."""
from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from backend.app import create_app
from tests.conftest import fcm_app_settings
from tests.fakes.fcm_server import FakeFcmControl


@pytest.fixture(scope="session")
def app(database_url: str, services: Any, fake_fcm_server: FakeFcmControl) -> Flask:
    """The app under test: PUSH_BACKEND=fcm pointed at the fake."""
    return create_app(fcm_app_settings(database_url, services.redis_url, fake_fcm_server))
