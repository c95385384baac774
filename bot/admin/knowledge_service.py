"""Versioned knowledge editing: every write validated, audited and reversible.

All writes (console, API, CLI, imports, rollbacks) go through :class:`KnowledgeService.apply`,
which, under one cross-worker lock, changes the live entries hash, bumps ``kb:version``,
appends one audit record per changed entry (who, when, before, after) and announces the new
version on pub/sub so every worker reloads within moments.  Rollback needs no snapshots: the
state of an entry at version V is the ``after`` of its last audit record up to V, or the
``before`` of its first record after V.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bot import keys
from bot.errors import BadRequest
from knowledge.schema import Entry, KnowledgeBase, KnowledgeError, build_kb, parse_entry, question_clashes

AUDIT_MAX = 20_000
FIELDS = ("id", "questions", "answer", "tags", "enabled", "action")
_FIELD_IN_MESSAGE = re.compile(r"'(id|questions|answer|tags|enabled|action)(?:\.[^']*)?'")


class ValidationFailed(BadRequest):
    """An entry or file failed validation; ``field`` and ``row`` say where, for the form."""

    def __init__(self, message: str, field: str = "", row: int | None = None) -> None:
        super().__init__(message, status=422)
        self.field = field
        self.row = row

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error": str(self), "field": self.field}
        if self.row is not None:
            data["row"] = self.row
        return data


def field_of(message: str) -> str:
    """The entry field a schema error message is about ('' when it is about the whole entry)."""
    match = _FIELD_IN_MESSAGE.search(message)
    if match:
        return match.group(1)
    if "unknown field" in message:
        return "unknown"
    return ""


def validate(raw: Any, where: str = "entry") -> Entry:
    """:func:`parse_entry`, with its error turned into a 422 that names the field."""
    try:
        return parse_entry(raw, where)
    except KnowledgeError as exc:
        raise ValidationFailed(str(exc), field_of(str(exc))) from None


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


class KnowledgeService:
    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.clock = clock

    # ------------------------------------------------------------------ reading

    async def version(self) -> int:
        return int(await self.redis.get(keys.kb_version()) or 0)

    async def _raw(self) -> dict[str, dict[str, Any]]:
        stored = await self.redis.hgetall(keys.kb_entries())
        return {str(k): json.loads(v) for k, v in stored.items()}

    async def entries(self) -> list[Entry]:
        """Every entry, in the knowledge base's order."""
        docs = sorted((await self._raw()).values(), key=lambda d: int(d.get("_pos", 0)))
        return [parse_entry({k: v for k, v in d.items() if k != "_pos"}, "stored entry", strict=False) for d in docs]

    async def kb(self) -> KnowledgeBase:
        return build_kb(await self.entries(), "store")

    async def get(self, entry_id: str) -> Entry | None:
        raw = await self.redis.hget(keys.kb_entries(), entry_id)
        if raw is None:
            return None
        doc = json.loads(raw)
        doc.pop("_pos", None)
        return parse_entry(doc, "stored entry", strict=False)

    async def require(self, entry_id: str) -> Entry:
        entry = await self.get(entry_id)
        if entry is None:
            raise BadRequest(f"no entry {entry_id!r}", status=404)
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
        return [json.loads(r) for r in await self.redis.lrange(keys.kb_audit(), 0, -1)]

    async def history(self, entry_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Audit records, newest first; only one entry's when ``entry_id`` is given."""
        records = [r for r in await self.audit() if entry_id is None or r.get("entry_id") == entry_id]
        return [summary(r) for r in reversed(records)][:limit]

    # ------------------------------------------------------------------ writing

    async def save(self, raw: Mapping[str, Any], who: str, *, create: bool | None = None,
                   note: str = "") -> Change:
        """Create or update one entry. ``create=True`` refuses to overwrite (409), ``False``
        refuses to create (404)."""
        entry = validate(dict(raw))
        clashes = question_clashes(entry, await self.entries())
        if clashes:
            raise ValidationFailed(clashes[0], "questions")
        before = await self.get(entry.id)
        if create is True and before is not None:
            raise ValidationFailed(f"an entry with id {entry.id!r} already exists", "id")
        if create is False and before is None:
            raise BadRequest(f"no entry {entry.id!r}", status=404)
        if before == entry:
            return Change(await self.version(), ())
        return await self.apply({entry.id: entry}, who, "update" if before else "create", note)

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
        return await self.apply({entry_id: updated}, who, "add-questions", note)

    async def remove_question(self, entry_id: str, question: str, who: str) -> Change:
        entry = await self.require(entry_id)
        kept = [q for q in entry.questions if q != question]
        updated = validate({**entry.to_json(), "questions": kept})
        return await self.apply({entry_id: updated}, who, "remove-question")

    async def apply(self, changes: Mapping[str, Entry | None], who: str, action: str, note: str = "",
                    positions: Mapping[str, int] | None = None) -> Change:
        """Write entries (``None`` deletes), bump the version, audit and announce; atomic.

        ``positions`` puts re-created entries back where they were (rollback of a deletion)."""
        async with self.redis.lock(keys.kb_write_lock(), timeout=30, blocking_timeout=30):
            raw = await self._raw()
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
                    writes[entry_id] = json.dumps({**after, "_pos": pos}, ensure_ascii=False)  # type: ignore[dict-item]
                position = int(old["_pos"]) if old and "_pos" in old else pos if entry is not None else None
                pending.append({"at": now, "who": who, "action": action, "entry_id": entry_id,
                                "before": before, "after": after, "note": note, "pos": position})
            if not pending:
                return Change(await self.version(), ())
            async with self.redis.pipeline(transaction=True) as pipe:
                for entry_id, document in writes.items():
                    pipe.hset(keys.kb_entries(), entry_id, document)
                if deletes:
                    pipe.hdel(keys.kb_entries(), *deletes)
                pipe.incr(keys.kb_version())
                version = int((await pipe.execute())[-1])
            records = tuple({"version": version, **r} for r in pending)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.rpush(keys.kb_audit(), *(json.dumps(r, ensure_ascii=False) for r in records))
                pipe.ltrim(keys.kb_audit(), -AUDIT_MAX, -1)
                await pipe.execute()
        await self.announce(version, list(changes))
        return Change(version, records)

    async def announce(self, version: int, changed: list[str]) -> None:
        """Tell every worker to reload now (they also poll the version, should this be lost)."""
        await self.redis.publish(keys.kb_changes(), json.dumps({"version": version, "changed": changed[:100]}))

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
        if not any(r.get("entry_id") == entry_id for r in records):
            raise BadRequest(f"entry {entry_id!r} has no history", status=404)
        current = await self.get(entry_id)
        target = self.state_at(records, entry_id, version, current.to_json() if current else None)
        entry = validate(target) if target is not None else None
        return await self.apply({entry_id: entry}, who, "rollback", f"entry back to version {version}",
                                self.positions(records))

    async def rollback_all(self, version: int, who: str) -> Change:
        """Put the whole knowledge base back as it was at ``version``."""
        if version < 0 or version > await self.version():
            raise BadRequest(f"no version {version}", status=404)
        records = await self.audit()
        touched = list(dict.fromkeys(r["entry_id"] for r in records if int(r["version"]) > version))
        if records and version < int(records[0]["version"]) - 1:
            raise BadRequest(f"version {version} is older than the kept history", status=409)
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
