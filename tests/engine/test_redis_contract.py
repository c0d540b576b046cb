"""The engine contract against :class:`~tailhub.engine.redis.RedisEngine`, on a real
``redis-server`` and on a real Redis Cluster of three masters, both started by the tests.

A place is a key prefix: the same place finds the same state again (the restart contract),
and every test's engines use prefixes of their own on the module's servers.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tailhub.engine import Engine
from tailhub.engine.redis import RedisEngine
from tests.engine.contract import (
    CommandContract,
    Harness,
    HistoryContract,
    Options,
    PublishContract,
    RecordContract,
    RestartContract,
    SessionContract,
)
from tests.engine.redis_servers import RedisCluster, RedisServer


def _factory(url: str):  # type: ignore[no-untyped-def]
    async def make(place: Path, options: Options) -> Engine:
        prefix = "c" + hashlib.sha1(str(place).encode()).hexdigest()[:12] + ":"
        return RedisEngine(
            url,
            prefix=prefix,
            max_sessions=options.max_sessions,
            retention_messages=options.max_messages,
            retention_age=options.max_age,
        )

    return make


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    servers = RedisCluster(tmp_path_factory.mktemp("cluster")).start()
    yield servers
    servers.stop()


class _OnRedis:
    @pytest.fixture
    async def engines(self, standalone: RedisServer, tmp_path: Path) -> AsyncIterator[Harness]:
        harness = Harness(_factory(standalone.url), tmp_path, keeps_state=True)
        yield harness
        await harness.close()


class _OnCluster:
    @pytest.fixture
    async def engines(self, cluster: RedisCluster, tmp_path: Path) -> AsyncIterator[Harness]:
        harness = Harness(_factory(cluster.url), tmp_path, keeps_state=True)
        yield harness
        await harness.close()


class TestRedisPublish(_OnRedis, PublishContract):
    """The publish contract, on one Redis server."""


class TestRedisHistory(_OnRedis, HistoryContract):
    """The history contract, on one Redis server."""


class TestRedisSessions(_OnRedis, SessionContract):
    """The session contract, on one Redis server."""


class TestRedisCommands(_OnRedis, CommandContract):
    """The command contract, on one Redis server."""


class TestRedisRecords(_OnRedis, RecordContract):
    """The metadata and records contract, on one Redis server."""


class TestRedisRestart(_OnRedis, RestartContract):
    """The restart contract, on one Redis server."""


class TestClusterPublish(_OnCluster, PublishContract):
    """The publish contract, on Redis Cluster."""


class TestClusterHistory(_OnCluster, HistoryContract):
    """The history contract, on Redis Cluster."""


class TestClusterSessions(_OnCluster, SessionContract):
    """The session contract, on Redis Cluster."""


class TestClusterCommands(_OnCluster, CommandContract):
    """The command contract, on Redis Cluster."""


class TestClusterRecords(_OnCluster, RecordContract):
    """The metadata and records contract, on Redis Cluster."""


class TestClusterRestart(_OnCluster, RestartContract):
    """The restart contract, on Redis Cluster."""
