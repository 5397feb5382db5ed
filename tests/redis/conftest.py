"""Fixtures for the Redis backend: servers the tests start themselves, never another one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import RedisServer, redis_server_binary


@pytest.fixture(scope="session")
def redis_binary(pytestconfig: pytest.Config) -> str:
    return redis_server_binary(pytestconfig)


@pytest.fixture(scope="session")
def redis_server(redis_binary: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One server shared by the tests of a session; each test uses its own key prefix."""
    server = RedisServer(redis_binary, tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def own_redis_server(redis_binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    """A server for this test alone (to kill or restart); not started yet."""
    server = RedisServer(redis_binary, tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def redis_key() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_url(redis_server: RedisServer, redis_key: str) -> str:
    """A fresh, empty store location on the shared server."""
    return redis_server.url(redis_key)
