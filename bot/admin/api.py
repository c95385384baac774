"""The admin REST API under ``/api/admin/...``: knowledge editing, imports, unanswered questions,
the test box and the dashboard.  Described at ``/api/admin/openapi.json``.

Authentication is the agent console's (session cookie + ``X-CSRF-Token``, or a bearer token
from ``kefu agent token``); every route here additionally needs the ``admin`` role: an agent
gets 403, an anonymous caller 401.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.admin.dashboard import Dashboard, to_csv
from bot.admin.recorder import TurnRecorder
from bot.admin.unanswered import UnansweredBook, cluster_records, decision_json, probe, replay
from bot.agents.access import ConsoleAccess
from bot.agents.auth import Agent
from bot.errors import BadRequest
from bot.json_body import json_object
from bot.runtime import Runtime
from bot.storage.desk import DeskRecords
from bot.storage.tickets import TicketStore
from handlers import respond
from knowledge import imports
from knowledge.errors import ValidationFailed
from knowledge.schema import Entry
from knowledge.service import KnowledgeService, answer_warnings, validate
from knowledge.sync import served_versions

Handler = Callable[[Request], Awaitable[Response]]
REPLAY_LIMIT = 300


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
        raise BadRequest(f"'{key}' must be a non-empty list of strings")
    return [v for v in value if v.strip()]


def _query_number(request: Request, name: str, default: float, low: float, high: float) -> float:
    """A numeric query parameter within [low, high]; anything else is the caller's mistake (400)."""
    raw = request.query_params.get(name) or ""
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"'{name}' must be a number") from None
    if not low <= value <= high:  # also false for NaN
        raise BadRequest(f"'{name}' must be between {low:g} and {high:g}")
    return value


def _version(body: dict[str, Any]) -> int:
    value = body.get("version")
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("'version' must be an integer")
    return value


def _entry_json(entry: Entry) -> dict[str, Any]:
    return entry.to_json() | {"enabled": entry.enabled, "tags": list(entry.tags)}


class AdminApi:
    def __init__(self, runtime: Runtime, access: ConsoleAccess, recorder: TurnRecorder,
                 clock: Callable[[], float] = time.time) -> None:
        self.runtime = runtime
        self.clock = clock
        self.access = access
        redis = runtime.store.redis
        self.knowledge = KnowledgeService(redis)
        self.book = UnansweredBook(runtime.store.records)
        self.dashboard = Dashboard(runtime.store.records, DeskRecords(redis), TicketStore(redis))
        self.recorder = recorder

    async def admin(self, request: Request) -> Agent:
        """The caller if an admin: 401 when not logged in, 403 for an agent."""
        return await self.access.admin(request, refusal="admins only: your role cannot change the knowledge base")

    def routes(self) -> list[BaseRoute]:
        p = "/api/admin"

        def r(path: str, endpoint: Handler, method: str = "GET") -> Route:
            return Route(p + path, endpoint, methods=[method])

        return [
            Route(f"{p}/openapi.json", self.openapi, methods=["GET"]),
            r("/status", self.status),
            r("/entries", self.list_entries),
            r("/entries", self.create, "POST"),
            r("/entries/{entry_id}", self.get_entry),
            r("/entries/{entry_id}", self.update, "PUT"),
            r("/entries/{entry_id}", self.delete, "DELETE"),
            r("/entries/{entry_id}/enabled", self.enabled, "POST"),
            r("/entries/{entry_id}/questions", self.add_questions, "POST"),
            r("/entries/{entry_id}/questions/remove", self.remove_question, "POST"),
            r("/entries/{entry_id}/history", self.entry_history),
            r("/entries/{entry_id}/rollback", self.entry_rollback, "POST"),
            r("/history", self.history),
            r("/rollback", self.rollback, "POST"),
            r("/validate", self.validate, "POST"),
            r("/try", self.try_it, "POST"),
            r("/preview", self.preview, "POST"),
            r("/export", self.export),
            r("/import", self.import_file, "POST"),
            r("/unanswered", self.unanswered),
            r("/unanswered/apply", self.unanswered_apply, "POST"),
            r("/unanswered/draft", self.unanswered_draft, "POST"),
            r("/unanswered/dismiss", self.unanswered_dismiss, "POST"),
            r("/dashboard", self.dashboard_json),
            r("/dashboard.csv", self.dashboard_csv),
        ]

    async def openapi(self, request: Request) -> Response:
        from bot.admin.openapi import OPENAPI

        return JSONResponse(OPENAPI)

    # ------------------------------------------------------------------ knowledge

    async def status(self, request: Request) -> Response:
        """``workers``: every live worker and the version it answers from; ``serving``: the
        version all of them answer from (what the console waits for before saying "saved")."""
        await self.admin(request)
        workers = await served_versions(self.runtime.store.redis, self.clock())
        this = self.runtime.knowledge.version
        return JSONResponse({"version": await self.knowledge.version(), "worker_version": this,
                             "entries": len(self.runtime.knowledge.kb), "workers": workers,
                             "serving": min((w["version"] for w in workers), default=this)})

    async def list_entries(self, request: Request) -> Response:
        await self.admin(request)
        q = request.query_params
        entries = await self.knowledge.search(q.get("q", ""), q.get("tag", ""))
        return JSONResponse({"version": await self.knowledge.version(), "tags": await self.knowledge.tags(),
                             "entries": [_entry_json(e) for e in entries]})

    async def get_entry(self, request: Request) -> Response:
        await self.admin(request)
        entry = await self.knowledge.require(request.path_params["entry_id"])
        return JSONResponse({"entry": _entry_json(entry)})

    async def create(self, request: Request) -> Response:
        agent = await self.admin(request)
        change = await self.knowledge.save(await json_object(request), agent.name, create=True)
        return JSONResponse(change.to_json(), status_code=201)

    async def update(self, request: Request) -> Response:
        agent = await self.admin(request)
        body = await json_object(request)
        entry_id = request.path_params["entry_id"]
        body.setdefault("id", entry_id)
        if body["id"] != entry_id:
            raise ValidationFailed("'id' cannot be changed; create a new entry and delete this one", "id")
        change = await self.knowledge.save(body, agent.name, create=False)
        return JSONResponse(change.to_json())

    async def delete(self, request: Request) -> Response:
        agent = await self.admin(request)
        return JSONResponse((await self.knowledge.delete(request.path_params["entry_id"], agent.name)).to_json())

    async def enabled(self, request: Request) -> Response:
        agent = await self.admin(request)
        value = (await json_object(request)).get("enabled")
        if not isinstance(value, bool):
            raise ValidationFailed("'enabled' must be true or false", "enabled")
        change = await self.knowledge.set_enabled(request.path_params["entry_id"], value, agent.name)
        return JSONResponse(change.to_json())

    async def add_questions(self, request: Request) -> Response:
        agent = await self.admin(request)
        questions = _strings(await json_object(request), "questions")
        change = await self.knowledge.add_questions(request.path_params["entry_id"], questions, agent.name)
        return JSONResponse(change.to_json())

    async def remove_question(self, request: Request) -> Response:
        agent = await self.admin(request)
        question = (await json_object(request)).get("question")
        if not isinstance(question, str):
            raise BadRequest("'question' must be a string")
        change = await self.knowledge.remove_question(request.path_params["entry_id"], question, agent.name)
        return JSONResponse(change.to_json())

    async def entry_history(self, request: Request) -> Response:
        await self.admin(request)
        return JSONResponse({"history": await self.knowledge.history(request.path_params["entry_id"])})

    async def entry_rollback(self, request: Request) -> Response:
        agent = await self.admin(request)
        version = _version(await json_object(request))
        change = await self.knowledge.rollback_entry(request.path_params["entry_id"], version, agent.name)
        return JSONResponse(change.to_json())

    async def history(self, request: Request) -> Response:
        await self.admin(request)
        limit = int(_query_number(request, "limit", 200, 1, 10_000))
        return JSONResponse({"version": await self.knowledge.version(),
                             "history": await self.knowledge.history(None, limit)})

    async def rollback(self, request: Request) -> Response:
        agent = await self.admin(request)
        change = await self.knowledge.rollback_all(_version(await json_object(request)), agent.name)
        return JSONResponse(change.to_json())

    async def validate(self, request: Request) -> Response:
        """What saving would say, before saving: ``problems`` block the save (a question another
        entry has), ``warnings`` ask for a second look (one language of the answer changed)."""
        await self.admin(request)
        entry = validate(await json_object(request))
        problems = await self.knowledge.clashes(entry)  # decoded in a thread, as a save does
        warnings = answer_warnings(await self.knowledge.get(entry.id), entry)
        return JSONResponse({"ok": not problems, "entry": _entry_json(entry), "problems": problems,
                             "warnings": warnings})

    # ------------------------------------------------------------------ trying and previewing

    async def try_it(self, request: Request) -> Response:
        """Classify a question exactly as a live message would be, and show why."""
        await self.admin(request)
        body = await json_object(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValidationFailed("'text' must be a non-empty string", "text")
        live = self.runtime.knowledge
        conv = probe(text)
        decision = await self.runtime.engine.decide(text, conv)  # classify, then act, as a live message
        outcome = respond(decision, conv, live.kb, self.runtime.config.handoff)
        return JSONResponse({"version": live.version, "decision": decision_json(decision, live.kb),
                             "replies": [r.text for r in outcome.replies]})

    async def preview(self, request: Request) -> Response:
        """Replay recent real questions against a proposed change: which answers would change."""
        await self.admin(request)
        body = await json_object(request)
        changes: dict[str, Entry | None] = {}
        if "entry" in body:
            entry = validate(body["entry"])
            changes[entry.id] = entry
        if isinstance(body.get("add_questions"), dict):
            spec = body["add_questions"]
            entry = await self.knowledge.require(str(spec.get("entry_id", "")))
            extra = [q for q in spec.get("questions") or [] if isinstance(q, str)]
            changes[entry.id] = validate({**entry.to_json(), "questions": [*entry.questions, *extra]})
        if isinstance(body.get("delete"), str):
            changes[body["delete"]] = None
        if not changes:
            raise BadRequest("give 'entry', 'add_questions' or 'delete' to preview")
        questions = await self.book.recent_questions(REPLAY_LIMIT)
        result = await asyncio.to_thread(replay, self.runtime.knowledge, changes, self.runtime.config, questions)
        return JSONResponse(result)

    # ------------------------------------------------------------------ import / export

    async def export(self, request: Request) -> Response:
        await self.admin(request)
        fmt = imports.format_of("", request.query_params.get("format", "yaml"))
        data = await asyncio.to_thread(imports.export, await self.knowledge.kb(), fmt)
        return Response(data, media_type=imports.MEDIA_TYPES[fmt],
                        headers={"Content-Disposition": f'attachment; filename="knowledge.{fmt}"'})

    async def import_file(self, request: Request) -> Response:
        """Body: the file itself. ``?format=`` (or the filename), ``dry_run=1`` to only preview,
        ``mode=merge`` to keep entries the file does not mention (default: replace); a replace that
        would remove many entries (or all) is refused with 409 unless ``replace_all=1``."""
        agent = await self.admin(request)
        q = request.query_params
        fmt = imports.format_of(q.get("filename", ""), q.get("format", ""))
        merge = q.get("mode", "replace") == "merge"
        data = await request.body()  # parsing is CPU work: a worker thread, so the loop keeps serving
        incoming = await asyncio.to_thread(imports.parse_upload, data, fmt, q.get("filename") or f"upload.{fmt}")
        current = await self.knowledge.entries()
        preview = imports.diff(current, incoming, remove_missing=not merge)
        if q.get("dry_run", "") in ("1", "true", "yes"):
            return JSONResponse({"dry_run": True, **preview})
        if not merge and q.get("replace_all", "") not in ("1", "true", "yes"):
            problem = imports.removal_problem(q.get("filename") or "the file", current, incoming, "replace_all=1")
            if problem is not None:
                return JSONResponse({"error": problem, "needs": "replace_all", **preview}, status_code=409)
        changes = imports.import_changes(current, incoming, remove_missing=not merge)
        change = await self.knowledge.apply(changes, agent.name, "import", q.get("filename", ""))
        undo = {"undo_version": change.version - 1} if change.records else {}
        return JSONResponse({"dry_run": False, **preview, "version": change.version, **undo})

    # ------------------------------------------------------------------ unanswered

    async def unanswered(self, request: Request) -> Response:
        await self.admin(request)
        days = _query_number(request, "days", 30, 0, 3660)
        records = await self.book.records(since=self.dashboard.clock() - days * 86400)
        dense = self.runtime.config.intents.embeddings
        clusters = await asyncio.to_thread(cluster_records, records, dense=dense)
        return JSONResponse({"total": len(records), "clusters": [c.to_json() for c in clusters]})

    async def unanswered_apply(self, request: Request) -> Response:
        """Add a cluster's phrasings as similar questions of an existing entry (one click)."""
        agent = await self.admin(request)
        body = await json_object(request)
        entry_id = body.get("entry_id")
        if not isinstance(entry_id, str) or not entry_id:
            raise ValidationFailed("choose the entry to add these questions to", "entry_id")
        questions = _strings(body, "questions")
        change = await self.knowledge.add_questions(entry_id, questions, agent.name, "from unanswered questions")
        resolved = await self.book.resolve(questions)
        return JSONResponse({**change.to_json(), "resolved": resolved})

    async def unanswered_draft(self, request: Request) -> Response:
        """A new entry prefilled from a cluster, for the editor (nothing is saved)."""
        await self.admin(request)
        questions = _strings(await json_object(request), "questions")
        if not questions:  # only blank strings: nothing to draft from (was an IndexError, a 500)
            raise BadRequest("'questions' must hold at least one question that is not blank")
        base = "".join(ch if ch.isalnum() else "-" for ch in questions[0].lower())[:40].strip("-") or "new-entry"
        existing = {e.id for e in await self.knowledge.entries()}
        entry_id, n = base, 2
        while entry_id in existing:
            entry_id, n = f"{base}-{n}", n + 1
        return JSONResponse({"entry": {"id": entry_id, "questions": questions, "answer": {"zh": "", "en": ""},
                                       "tags": ["from-unanswered"], "enabled": True}})

    async def unanswered_dismiss(self, request: Request) -> Response:
        await self.admin(request)
        return JSONResponse({"resolved": await self.book.resolve(_strings(await json_object(request), "questions"))})

    # ------------------------------------------------------------------ dashboard

    async def dashboard_json(self, request: Request) -> Response:
        await self.admin(request)
        return JSONResponse(await self.dashboard.report(request.query_params.get("period", "7d")))

    async def dashboard_csv(self, request: Request) -> Response:
        await self.admin(request)
        period = request.query_params.get("period", "7d")
        report = await self.dashboard.report(period)
        return Response(to_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="kefu-dashboard-{period}.csv"'})

