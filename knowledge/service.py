"""Versioned knowledge editing: every write validated, audited, announced and reversible.

All writes (console, API, CLI, imports, rollbacks, seeding an empty store) go through
:class:`KnowledgeService`, which, under one cross-worker lock, changes the live entries hash,
bumps ``kb:version`` and appends one audit record per changed entry (who, when, before, after)
in one transaction, then announces the new version on pub/sub so every worker reloads within
moments.  Rollback needs no snapshots: the state of an entry at version V is the ``after`` of
its last audit record up to V, or the ``before`` of its first record after V.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bot import keys
from knowledge.errors import (
    FIELDS,
    EntryNotFound,
    KnowledgeError,
    KnowledgeLocked,
    ValidationFailed,
    VersionConflict,
    VersionNotFound,
)
from knowledge.repository import AUDIT_MAX, Document, KnowledgeRepository, encode, parse_documents
from knowledge.schema import Entry, KnowledgeBase, build_kb, clashes_among, parse_entry

__all__ = ["AUDIT_MAX", "FIELDS", "Change", "KnowledgeService", "ValidationFailed", "answer_warnings",
           "changed_fields", "summary", "validate"]

LOCK_SECONDS = 30  # how long a write may hold the lock, and how long another waits for it


def validate(raw: Any, where: str = "entry") -> Entry:
    """:func:`parse_entry`, with its error turned into a :class:`ValidationFailed` that names the field."""
    try:
        return parse_entry(raw, where)
    except KnowledgeError as exc:
        raise ValidationFailed.of(exc) from None


def answer_warnings(before: Entry | None, after: Entry) -> list[str]:
    """An edit that changes the answer in one language but not the other: the unchanged one
    probably still says the old thing (customers get whichever matches their language)."""
    if before is None:
        return []
    changed = [lang for lang in after.answer if lang in before.answer and after.answer[lang] != before.answer[lang]]
    kept = [lang for lang in after.answer if lang in before.answer and after.answer[lang] == before.answer[lang]]
    zh, en = {"zh": "中文", "en": "英文"}, {"zh": "Chinese", "en": "English"}
    return [f"只改了{zh.get(c, c)}答案，{zh.get(k, k)}答案没变 · The {en.get(c, c)} answer changed but the "
            f"{en.get(k, k)} one did not: check that it still agrees"
            for c in changed for k in kept]


def changed_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    if before is None or after is None:
        return [f for f in FIELDS if (before or after or {}).get(f) is not None]
    return [f for f in FIELDS if before.get(f) != after.get(f)]


@dataclass(frozen=True)
class Change:
    """The outcome of one write: the new version and the audit records it appended."""

    version: int
    records: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        """``undo_version``: roll back to it to undo this write (absent when nothing changed)."""
        data: dict[str, Any] = {"version": self.version, "changes": [summary(r) for r in self.records]}
        if self.records:
            data["undo_version"] = self.version - 1
        return data


def summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """An audit record for display: who, when, what, and which fields changed."""
    return {**record, "fields": changed_fields(record.get("before"), record.get("after"))}


def _clashes(changes: Mapping[str, Entry | None], documents: Mapping[str, Document]) -> list[str]:
    """Questions of the changed entries that another entry (stored, or changed alongside) has."""
    new = [entry for entry in changes.values() if entry is not None]
    owners = [*((eid, d.get("questions") or ()) for eid, d in documents.items() if eid not in changes),
              *((e.id, e.questions) for e in new)]  # (each entry skips its own id)
    return [clash for entry in new for clash in clashes_among(entry, owners)]


def _planned(stored: Mapping[str, str], changes: Mapping[str, Entry | None]
             ) -> tuple[dict[str, Document], list[str]]:
    """The stored documents decoded, and the question clashes of ``changes`` against them (in a
    thread: 20,000 documents and 150,000 questions are a second of CPU)."""
    documents = parse_documents(stored)
    return documents, _clashes(changes, documents) if changes else []


class KnowledgeService:
    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.repository = KnowledgeRepository(redis)
        self.clock = clock

    # ------------------------------------------------------------------ reading

    async def version(self) -> int:
        return await self.repository.version()

    async def entries(self) -> list[Entry]:
        """Every entry, in the knowledge base's order."""
        return await self.repository.entries()

    async def kb(self) -> KnowledgeBase:
        return build_kb(await self.entries(), "store")

    async def get(self, entry_id: str) -> Entry | None:
        return await self.repository.get(entry_id)

    async def require(self, entry_id: str) -> Entry:
        entry = await self.get(entry_id)
        if entry is None:
            raise EntryNotFound(f"no entry {entry_id!r}")
        return entry

    async def search(self, query: str = "", tag: str = "") -> list[Entry]:
        """Entries whose id, questions, answers or tags contain ``query`` (case-insensitive)."""
        needle = query.strip().lower()
        found = []
        for entry in await self.entries():
            if tag and tag not in entry.tags:
                continue
            haystack = " ".join([entry.id, *entry.questions, *entry.answer.values(), *entry.tags, entry.action])
            if needle in haystack.lower():
                found.append(entry)
        return found

    async def tags(self) -> list[str]:
        return sorted({tag for entry in await self.entries() for tag in entry.tags})

    async def audit(self) -> list[dict[str, Any]]:
        return await self.repository.audit()

    async def history(self, entry_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Audit records, newest first; only one entry's when ``entry_id`` is given."""
        records = [r for r in await self.audit() if entry_id is None or r.get("entry_id") == entry_id]
        return [summary(r) for r in reversed(records)][:limit]

    # ------------------------------------------------------------------ writing

    @asynccontextmanager
    async def _write_lock(self) -> AsyncIterator[None]:
        """The cross-worker write lock: one change at a time, whichever worker or CLI makes it."""
        lock = self.redis.lock(keys.kb_write_lock(), timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS)
        if not await lock.acquire():
            raise KnowledgeLocked("another change to the knowledge base is still being saved; try again")
        try:
            yield
        finally:
            await lock.release()

    async def seed(self, kb: KnowledgeBase, who: str = "kefu", note: str = "") -> tuple[KnowledgeBase, int]:
        """Store ``kb`` if the store never had a knowledge base; returns what the store now
        serves and its version.  Under the write lock, so of workers starting together one
        seeds and the others load its result; audited as one ``seed`` record (``entry_id``
        empty: it is no entry's edit) and announced like any other write."""
        async with self._write_lock():
            stored = await self.repository.load()
            if stored is not None:
                return stored, await self.repository.version()
            writes = {entry.id: encode(entry, position) for position, entry in enumerate(kb.entries)}
            record = {"at": self.clock(), "who": who, "action": "seed", "entry_id": "", "before": None,
                      "after": None, "note": note, "pos": None}
            version = await self.repository.commit(writes, (), [record])
        await self.repository.announce(version, [entry.id for entry in kb.entries])
        return kb, version

    async def save(self, raw: Mapping[str, Any], who: str, *, create: bool | None = None,
                   note: str = "") -> Change:
        """Create or update one entry. ``create=True`` refuses to overwrite, ``False``
        refuses to create (:class:`EntryNotFound`)."""
        entry = validate(dict(raw))
        before = await self.get(entry.id)
        if create is True and before is not None:
            raise ValidationFailed(f"an entry with id {entry.id!r} already exists", "id")
        if create is False and before is None:
            raise EntryNotFound(f"no entry {entry.id!r}")
        if before == entry:
            return Change(await self.version(), ())
        return await self.apply({entry.id: entry}, who, "update" if before else "create", note, check_questions=True)

    async def clashes(self, entry: Entry) -> list[str]:
        """What :meth:`save` would refuse ``entry`` for: one line per question another entry has."""
        documents = await self.repository.raw_documents()
        return await asyncio.to_thread(lambda: _clashes({entry.id: entry}, parse_documents(documents)))

    async def set_enabled(self, entry_id: str, enabled: bool, who: str) -> Change:
        entry = await self.require(entry_id)
        updated = validate({**entry.to_json(), "enabled": enabled})
        return await self.apply({entry_id: updated}, who, "enable" if enabled else "disable")

    async def delete(self, entry_id: str, who: str) -> Change:
        await self.require(entry_id)
        return await self.apply({entry_id: None}, who, "delete")

    async def add_questions(self, entry_id: str, questions: Iterable[str], who: str, note: str = "") -> Change:
        entry = await self.require(entry_id)
        merged = list(dict.fromkeys([*entry.questions, *(q.strip() for q in questions if q.strip())]))
        updated = validate({**entry.to_json(), "questions": merged})
        if updated == entry:
            return Change(await self.version(), ())
        return await self.apply({entry_id: updated}, who, "add-questions", note, check_questions=True)

    async def remove_question(self, entry_id: str, question: str, who: str) -> Change:
        entry = await self.require(entry_id)
        kept = [q for q in entry.questions if q != question]
        updated = validate({**entry.to_json(), "questions": kept})
        return await self.apply({entry_id: updated}, who, "remove-question")

    async def apply(self, changes: Mapping[str, Entry | None], who: str, action: str, note: str = "",
                    positions: Mapping[str, int] | None = None, *, check_questions: bool = False) -> Change:
        """Write entries (``None`` deletes), bump the version and audit in one transaction, then
        announce.

        ``positions`` puts re-created entries back where they were (rollback of a deletion);
        ``check_questions`` refuses a change that gives an entry another entry's question
        (checked under the lock, on the same read of the stored entries the write plans with:
        one read and one decode of the whole knowledge base per save)."""
        async with self._write_lock():
            stored = await self.repository.scanned_documents()
            raw, clashes = await asyncio.to_thread(_planned, stored, changes if check_questions else {})
            if clashes:
                raise ValidationFailed(clashes[0], "questions")
            next_pos = max((int(d.get("_pos", 0)) for d in raw.values()), default=-1) + 1
            used = {int(d.get("_pos", 0)) for d in raw.values()}
            now = self.clock()
            writes: dict[str, str] = {}
            deletes: list[str] = []
            pending = []
            for entry_id, entry in changes.items():
                old = raw.get(entry_id)
                before = {k: v for k, v in old.items() if k != "_pos"} if old else None
                after = entry.to_json() if entry is not None else None
                if before == after:
                    continue
                if entry is None:
                    deletes.append(entry_id)
                else:
                    hint = (positions or {}).get(entry_id)
                    if old and "_pos" in old:
                        pos = int(old["_pos"])
                    elif hint is not None and hint not in used:
                        pos = hint
                    else:
                        pos, next_pos = next_pos, next_pos + 1
                    used.add(pos)
                    writes[entry_id] = encode(entry, pos)
                position = int(old["_pos"]) if old and "_pos" in old else pos if entry is not None else None
                pending.append({"at": now, "who": who, "action": action, "entry_id": entry_id,
                                "before": before, "after": after, "note": note, "pos": position})
            if not pending:
                return Change(await self.version(), ())
            version = await self.repository.commit(writes, deletes, pending)
            records = tuple({"version": version, **r} for r in pending)
        await self.announce(version, list(changes))
        return Change(version, records)

    async def announce(self, version: int, changed: list[str]) -> None:
        """Tell every worker to reload now (they also poll the version, should this be lost)."""
        await self.repository.announce(version, changed)

    async def replace_all(self, kb: KnowledgeBase, who: str, action: str = "import", note: str = "") -> Change:
        """Make the knowledge base exactly ``kb``: entries not in it are deleted."""
        current = {e.id: e for e in await self.entries()}
        changes: dict[str, Entry | None] = {eid: None for eid in current if kb.get(eid) is None}
        changes.update({e.id: e for e in kb.entries if current.get(e.id) != e})
        return await self.apply(changes, who, action, note)

    # ------------------------------------------------------------------ rollback

    @staticmethod
    def state_at(records: list[dict[str, Any]], entry_id: str, version: int,
                 current: dict[str, Any] | None) -> dict[str, Any] | None:
        """The entry's JSON as it was right after ``version`` (None: it did not exist)."""
        mine = [r for r in records if r.get("entry_id") == entry_id]
        upto = [r for r in mine if int(r["version"]) <= version]
        if upto:
            after: dict[str, Any] | None = upto[-1]["after"]
            return after
        later = [r for r in mine if int(r["version"]) > version]
        if later:
            before: dict[str, Any] | None = later[0]["before"]
            return before
        return current

    async def rollback_entry(self, entry_id: str, version: int, who: str) -> Change:
        """Put one entry back as it was at ``version`` (deleting it if it did not exist yet)."""
        records = await self.audit()
        if not entry_id or not any(r.get("entry_id") == entry_id for r in records):
            raise EntryNotFound(f"entry {entry_id!r} has no history")
        current = await self.get(entry_id)
        target = self.state_at(records, entry_id, version, current.to_json() if current else None)
        entry = validate(target) if target is not None else None
        return await self.apply({entry_id: entry}, who, "rollback", f"entry back to version {version}",
                                self.positions(records))

    async def rollback_all(self, version: int, who: str) -> Change:
        """Put the whole knowledge base back as it was at ``version``."""
        if version < 0 or version > await self.version():
            raise VersionNotFound(f"no version {version}")
        records = [r for r in await self.audit() if r.get("entry_id")]  # the seed record is no entry's edit
        touched = list(dict.fromkeys(r["entry_id"] for r in records if int(r["version"]) > version))
        if records and version < int(records[0]["version"]) - 1:
            raise VersionConflict(f"version {version} is older than the kept history")
        changes: dict[str, Entry | None] = {}
        for entry_id in touched:
            current = await self.get(entry_id)
            target = self.state_at(records, entry_id, version, current.to_json() if current else None)
            changes[entry_id] = validate(target) if target is not None else None
        return await self.apply(changes, who, "rollback", f"knowledge base back to version {version}",
                                self.positions(records))

    @staticmethod
    def positions(records: list[dict[str, Any]]) -> dict[str, int]:
        """Each entry's last known position, so a restored entry returns to its place."""
        return {str(r["entry_id"]): int(r["pos"]) for r in records if r.get("pos") is not None}
