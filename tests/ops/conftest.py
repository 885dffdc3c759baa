"""Fixtures of the operations tests: dependencies of a test's own that it may stop."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.auth.conftest import make_user  # noqa: F401 - shared account fixtures
from tests.ops.redis_server import RedisServer, start_own_redis


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own (stopping it disturbs nobody)."""
    server = start_own_redis()
    try:
        yield server
    finally:
        server.close()
