"""The Redis client every repository shares: ``store.url`` parsed into a connection.

``redis://`` URLs use a real Redis shared by every worker; ``memory://`` runs the *same code*
against an in-process fakeredis server, so the embedded default behaves like production
except that it is not durable and not shared between processes.  ``redis+cluster://`` names
seed nodes of a Redis Cluster: every script and transaction touches one hash slot
(``bot/keys.py``), so the repositories run on it unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.errors import ConfigError

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
SENTINEL_SCHEME = "redis+sentinel://"
SENTINEL_FORM = "redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]"
CLUSTER_SCHEME = "redis+cluster://"
CLUSTER_FORM = "redis+cluster://[:PASSWORD@]HOST:PORT[,HOST:PORT...]"


@dataclass(frozen=True)
class SentinelUrl:
    """``store.url`` naming Sentinels and the master they watch instead of one Redis."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SentinelUrl:
        netloc, _, path = url.removeprefix(SENTINEL_SCHEME).partition("/")
        credentials, _, hosts = netloc.rpartition("@")
        password = credentials.partition(":")[2] or None if credentials else None
        sentinels = []
        for host in filter(None, hosts.split(",")):
            name, _, port = host.rpartition(":") if ":" in host else (host, "", "26379")
            if not name or not port.isdigit():
                raise ConfigError(f"store.url: {host!r} is not HOST:PORT (expected {SENTINEL_FORM})")
            sentinels.append((name, int(port)))
        parts = [part for part in path.split("/") if part]
        if not sentinels or not parts or len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
            shown = re.sub(r":[^@/]*@", ":***@", url)  # never a password in an error line
            raise ConfigError(f"store.url: expected {SENTINEL_FORM}, got {shown!r}")
        return cls(tuple(sentinels), parts[0], int(parts[1]) if len(parts) == 2 else 0, password)


def connect(url: str) -> aioredis.Redis:
    """A client for ``url``; ``memory://`` gives an in-process fakeredis server, and
    ``redis+sentinel://`` a client that asks the Sentinels where the master is, again after a
    failover."""
    if url.startswith("memory://"):
        import fakeredis

        return fakeredis.FakeAsyncRedis(decode_responses=True)
    if not url.startswith(("redis://", "rediss://", "unix://", SENTINEL_SCHEME, CLUSTER_SCHEME)):
        raise ConfigError(f"store.url must start with memory://, redis://, rediss://, unix://, "
                          f"{SENTINEL_SCHEME} or {CLUSTER_SCHEME}, got {url!r}")
    # A connection that died with a restarted Redis is retried on a fresh one (twice, quickly)
    # instead of failing the first turns after the restart.  Only connection errors: a command
    # that timed out may have run, and running it again could apply it twice.
    retry = Retry(ExponentialBackoff(cap=0.2, base=0.02), 2, supported_errors=(RedisConnectionError,))
    if url.startswith(SENTINEL_SCHEME):
        from redis.asyncio.sentinel import Sentinel

        where = SentinelUrl.parse(url)
        sentinel = Sentinel(list(where.sentinels), socket_timeout=1,  # type: ignore[no-untyped-call, unused-ignore]
                            socket_connect_timeout=1)
        client: aioredis.Redis = sentinel.master_for(where.master, decode_responses=True, socket_timeout=5,
                                                     socket_connect_timeout=5, retry=retry, db=where.db,
                                                     password=where.password)
        return client
    if url.startswith(CLUSTER_SCHEME):
        return _cluster(url, retry)
    return aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5,
                                   retry=retry)


def _cluster(url: str, retry: Retry) -> aioredis.Redis:
    """A Redis Cluster client from seed nodes; it learns the slot map and follows MOVED itself."""
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    credentials, _, hosts = url.removeprefix(CLUSTER_SCHEME).rstrip("/").rpartition("@")
    password = credentials.partition(":")[2] or None if credentials else None
    nodes = []
    for host in filter(None, hosts.split(",")):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise ConfigError(f"store.url: {host!r} is not HOST:PORT (expected {CLUSTER_FORM})")
        nodes.append(ClusterNode(name, int(port)))
    if not nodes:
        raise ConfigError(f"store.url: expected {CLUSTER_FORM}, got {re.sub(r':[^@/]*@', ':***@', url)!r}")
    cluster = RedisCluster(startup_nodes=nodes, decode_responses=True, password=password, socket_timeout=5,
                           socket_connect_timeout=5, retry=retry)
    # The repositories speak the commands both clients share (scripts, pipelines, one-slot
    # transactions, locks, SCAN, pub/sub), so the cluster client stands in for a Redis client.
    return cast(aioredis.Redis, cluster)
