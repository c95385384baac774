"""The key layout is Redis Cluster ready: every Lua script, ``MULTI``/``EXEC`` and multi-key
command the real code sends touches keys of one hash slot.

The keys are recorded on the wire (a real connection that notes every command it packs) while
the whole app serves a scripted day: web-chat visitors and turns, a handoff, agents logging in,
claiming, transferring and resolving, an admin editing the knowledge base, feedback, and the
storage calls no HTTP route reaches in a test (auto-assignment, requeue, card linking, held
replies, retention).  Slots are computed with CRC16 as Redis Cluster does (``CLUSTER KEYSLOT``),
checked against redis-py's ``key_slot``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.crc import key_slot
from starlette.testclient import TestClient

from bot import keys
from bot.agents.auth import hash_password
from bot.app import create_app
from bot.config import AgentsConfig, AgentUserConfig, Config, IntentsConfig, KnowledgeConfig, StoreConfig
from bot.retention import purge
from bot.storage import scripts
from bot.storage.agents import AgentAccounts
from bot.storage.conversations import Store
from bot.storage.desk import DeskRecords
from bot.storage.outbox import DeliveryWindows
from bot.storage.tickets import TicketStore
from bot.types import Conversation, HandoffRequest, InboundMessage, Reply
from tests.conftest import REDIS_URL, require_redis

pytestmark = pytest.mark.redis
PASSWORD = "slot-密码"


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM (polynomial 0x1021, initial 0): the checksum Redis Cluster hashes keys with."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        crc &= 0xFFFF
    return crc


def hash_tag(key: str) -> str | None:
    """The part of ``key`` Redis hashes when it has a tag: between the first ``{`` and the first
    ``}`` after it, if not empty."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1:end] if end > start + 1 else None


def slot(key: str) -> int:
    tag = hash_tag(key)
    return crc16((key if tag is None else tag).encode()) % 16384


# ----------------------------------------------------------------------------- the wire recorder

ALL_KEYS = {"DEL", "UNLINK", "EXISTS", "MGET", "TOUCH", "WATCH"}  # every argument is a key


@dataclass
class Call:
    """One atomic unit Redis Cluster routes to one slot: a script, a transaction, a multi-key command."""

    what: str
    keys: tuple[str, ...]


@dataclass
class _Wire:
    watched: list[str] = field(default_factory=list)
    transaction: list[str] | None = None


class Recorder:
    """Turns the packed command stream of each connection into :class:`Call` s."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.shas: set[str] = set()
        self._wires: dict[int, _Wire] = {}

    def command(self, connection: int, args: Sequence[Any]) -> None:
        parts = [a.decode() if isinstance(a, bytes) else str(a) for a in args]
        name, rest = parts[0].upper(), parts[1:]
        wire = self._wires.setdefault(connection, _Wire())
        if name == "MULTI":
            wire.transaction = list(wire.watched)
        elif name in ("EXEC", "DISCARD"):
            if wire.transaction is not None:
                self.calls.append(Call("MULTI", tuple(wire.transaction)))
            wire.transaction, wire.watched = None, []
        elif name == "UNWATCH":
            wire.watched = []
        elif name == "WATCH":
            wire.watched.extend(rest)
        elif wire.transaction is not None:
            wire.transaction.extend(rest if name in ALL_KEYS else rest[:1])
        elif name in ("EVALSHA", "EVAL"):
            self.shas.add(rest[0])
            self.calls.append(Call(f"{name} {rest[0][:8]}", tuple(rest[2:2 + int(rest[1])])))
        elif name in ALL_KEYS or name in ("RENAME", "COPY"):
            self.calls.append(Call(name, tuple(rest if name in ALL_KEYS else rest[:2])))

    def violations(self) -> list[str]:
        """Every call whose keys span two slots, or that hands a script or transaction several
        keys of which one has no hash tag (a script builds keys from a prefix: only a tag keeps
        the built key in the slot)."""
        found = []
        for call in self.calls:
            if len(set(call.keys)) < 2:  # one key (a counter's INCR and EXPIRE): one slot, tag or not
                continue
            slots = {slot(key) for key in call.keys}
            untagged = [key for key in call.keys if hash_tag(key) is None]
            if len(slots) > 1 or untagged:
                found.append(f"{call.what}: {', '.join(f'{k} (slot {slot(k)})' for k in call.keys)}")
        return found

    def all_keys(self) -> set[str]:
        return {key for call in self.calls for key in call.keys}


RECORDER = Recorder()


class RecordingConnection(Connection):
    """A real connection that tells :data:`RECORDER` every command it sends (pipelines and
    transactions pack theirs one by one through here too)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        RECORDER.command(id(self), args)
        return super().pack_command(*args)


def recording_client() -> aioredis.Redis:
    pool = aioredis.ConnectionPool.from_url(REDIS_URL, decode_responses=True, connection_class=RecordingConnection)
    return aioredis.Redis(connection_pool=pool)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Recorder, set[str]]]:
    """A fresh recorder and the SHA of every script a repository registers meanwhile."""
    require_redis()
    registered: set[str] = set()
    real_init = scripts.Lua.__init__

    def noting(self: scripts.Lua, redis: aioredis.Redis, source: str) -> None:
        real_init(self, redis, source)
        registered.add(self.sha)

    monkeypatch.setattr(scripts.Lua, "__init__", noting)
    RECORDER.__init__()  # type: ignore[misc]
    asyncio.run(_clear())
    yield RECORDER, registered
    asyncio.run(_clear())


async def _clear() -> None:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await Store(client, StoreConfig()).clear()
    finally:
        await client.aclose()


# ----------------------------------------------------------------------------- the checks themselves


def test_crc16_slots_are_the_ones_redis_cluster_computes() -> None:
    assert crc16(b"123456789") == 0x31C3  # the CRC-16/XMODEM check value the Redis Cluster spec gives
    samples = ["kefu:{web:abc}:conv", "kefu:{desk}:ticket:1", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}",
               "{user1000}.following", "kefu:seen:msg:web:1", "客服:{会话}:1", "a{", "}b{c}"]
    samples += [keys.message_claim(f"web:{i}", "msg:web", str(i)) for i in range(200)]
    for key in samples:
        assert slot(key) == key_slot(key.encode()), key
    assert slot("foo{}{bar}") == crc16(b"foo{}{bar}") % 16384  # an empty tag: the whole key
    assert slot("foo{bar}{zap}") == slot("bar") == slot("kefu:{bar}:x")  # the first tag only
    assert slot("foo{{bar}}zap") == slot("{bar")


def test_the_recorder_catches_a_cross_slot_script_and_transaction(recorder: tuple[Recorder, set[str]]) -> None:
    rec, _ = recorder

    async def cross() -> None:
        client = recording_client()
        try:
            await client.eval("return 1", 2, "kefu:one", "kefu:two")
            async with client.pipeline(transaction=True) as pipe:
                pipe.set(keys.conversation("web:x"), "1")
                pipe.set(keys.agent_queue(), "1")
                await pipe.execute()
            await client.delete(keys.transcript("web:x"), keys.lock("web:x"))  # one slot: fine
        finally:
            await client.aclose()

    asyncio.run(cross())
    assert [v.split(" ")[0] for v in rec.violations()] == ["EVAL", "MULTI:"]


def test_every_script_and_transaction_of_a_day_touches_one_slot(recorder: tuple[Recorder, set[str]],
                                                                 cache_dir: Any) -> None:
    rec, registered = recorder
    hashed = hash_password(PASSWORD)
    users = (AgentUserConfig("li", hashed, "agent"), AgentUserConfig("wang", hashed, "agent"),
             AgentUserConfig("boss", hashed, "admin"))
    config = Config(store=StoreConfig(url=REDIS_URL), knowledge=KnowledgeConfig(cache_dir=str(cache_dir)),
                    intents=IntentsConfig(embeddings=False), agents=dataclasses.replace(AgentsConfig(), users=users))
    with TestClient(create_app(config, redis=recording_client())) as client:
        token = client.post("/api/chat/visitor", json={}).json()["token"]  # admitted as a new chat
        for text in ("怎么退货", "退款多久到账"):
            turn = client.post("/api/chat", json={"token": token, "text": text})
            assert turn.status_code == 200 and turn.json()["replies"], turn.text
        assert client.post("/api/chat", json={"session": "slot-session-a", "text": "几点上班"}).status_code == 200
        asked = client.get("/api/chat/slot-session-a/messages", params={"after": 0}).json()
        assert asked["messages"], asked
        voted = client.post("/api/feedback", json={"session": "slot-session-a", "helpful": False})
        assert voted.status_code in (200, 204, 400, 404), voted.text  # whatever it says, its writes are recorded
        handoff = client.post("/api/chat", json={"session": "slot-session-b", "text": "转人工"})
        assert handoff.json()["state"] == "waiting", handoff.text

        def login(name: str) -> dict[str, str]:
            done = client.post("/api/agent/login", json={"name": name, "password": PASSWORD})
            assert done.status_code == 200, done.text
            return {"X-CSRF-Token": done.json()["csrf"]}

        assert client.post("/api/agent/login", json={"name": "li", "password": "wrong"}).status_code == 401
        li = login("li")
        ticket = client.get("/api/agent/tickets").json()["queued"][0]["id"]
        assert client.post(f"/api/agent/tickets/{ticket}/claim", headers=li).status_code == 200
        said = client.post(f"/api/agent/tickets/{ticket}/messages", json={"text": "您好"}, headers=li)
        assert said.status_code == 200, said.text
        assert client.post("/api/chat", json={"session": "slot-session-b", "text": "订单 123"}).status_code == 200
        moved = client.post(f"/api/agent/tickets/{ticket}/transfer", json={"to": "wang"}, headers=li)
        assert moved.status_code == 200, moved.text
        wang = login("wang")
        resolved = client.post(f"/api/agent/tickets/{ticket}/resolve", headers=wang)
        assert resolved.json()["ticket"]["status"] == "resolved", resolved.text
        boss = login("boss")
        entry = client.get("/api/admin/entries/return-policy").json()
        entry = entry.get("entry", entry)
        entry["questions"] = [*entry["questions"], "东西不想要了怎么办"]
        edited = client.put("/api/admin/entries/return-policy", json=entry, headers=boss)
        assert edited.status_code == 200, edited.text
    asyncio.run(_storage_calls_no_route_reaches())

    assert rec.violations() == []
    assert registered <= rec.shas, "a registered script never ran: drive it here"
    assert any(call.what == "MULTI" and keys.kb_version() in call.keys for call in rec.calls)  # the knowledge edit
    assert any(call.what == "MGET" for call in rec.calls)  # the web page's poll
    for key in rec.all_keys():  # and each slot as Redis Cluster computes it
        assert slot(key) == key_slot(key.encode()), key


async def _storage_calls_no_route_reaches() -> None:
    client = recording_client()
    try:
        now = time.time()
        tickets = TicketStore(client)
        conv = Conversation.start(InboundMessage("telegram", "9", "9", "人工", "u1", now))
        ticket, created = await tickets.open(conv, HandoffRequest("human_request", ""), after_hours=False,
                                             summary="", context={})
        assert created and await tickets.assign(ticket.id, [("li", 5), ("wang", 5)], "least_busy")
        claimed = await tickets.get(ticket.id)
        assert claimed is not None and await tickets.requeue(claimed)
        assert await tickets.claim(ticket.id, "wang", limit=5) == 1
        await DeskRecords(client).link("telegram:9", {"name": "九"}, ["telegram:9", "web:slot-session-b"], "web:slot-session-b")
        windows = DeliveryWindows(client, "wechat")
        await windows.opened("o1", now)
        assert await windows.reserve("o1", now, 172_800, 5) == "ok"
        await windows.hold("wechat:o1", "o1", [Reply("稍后回复")], "window_closed", now)
        assert [r.text for r in await windows.take("wechat:o1")] == ["稍后回复"]
        await AgentAccounts(client).unlock("any-name")
        await Store(client, StoreConfig()).count_message(conv.id, now)
        closed = await tickets.get(ticket.id)
        assert closed is not None and await tickets.close(closed, "resolved")
        await purge(client, now + 10**9)  # retention: conversations, closed tickets, logs
    finally:
        await client.aclose()
