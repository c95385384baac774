"""OpenAPI description of ``/api/admin/...`` (served at ``/api/admin/openapi.json``)."""

from __future__ import annotations

from typing import Any

from bot.agents.access import COOKIE

_STR = {"type": "string"}
_STRS = {"type": "array", "items": _STR}
ENTRY = {
    "type": "object",
    "required": ["id", "questions"],
    "properties": {
        "id": {"type": "string", "description": "up to 128 characters, no spaces or '/'"},
        "questions": {**_STRS, "description": "first one canonical; the rest are similar questions"},
        "answer": {"oneOf": [_STR, {"type": "object", "additionalProperties": _STR,
                                    "description": "language (zh, en) → answer"}]},
        "tags": _STRS,
        "enabled": {"type": "boolean"},
        "action": {"type": "string", "description": "a business action such as action_order_status"},
    },
}


def _op(summary: str, *, body: dict[str, Any] | None = None, entry: bool = False, public: bool = False,
        query: tuple[str, ...] = (), raw_body: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {
        "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
        "401": {"description": "not logged in"},
        "403": {"description": "not an admin (or missing CSRF token)"},
        "422": {"description": "validation failed", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ValidationError"}}}},
    }}
    params: list[dict[str, Any]] = []
    if entry:
        params.append({"name": "entry_id", "in": "path", "required": True, "schema": _STR})
    params += [{"name": name, "in": "query", "required": False, "schema": _STR} for name in query]
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if raw_body:
        op["requestBody"] = {"required": True, "content": {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}}
    if public:
        op["security"] = []
    return op


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props)}


OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Kefu admin API", "version": "1",
             "description": "Edit the live knowledge base (versioned, audited, reversible), import/export it, "
                            "try questions, turn unanswered questions into knowledge and read the dashboard. "
                            "Admins only. Log in with POST /api/agent/login (cookie + X-CSRF-Token on writes) "
                            "or send a bearer token from `kefu agent token`."},
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": COOKIE},
        },
        "schemas": {
            "Entry": ENTRY,
            "ValidationError": {"type": "object", "properties": {
                "error": _STR, "field": _STR, "row": {"type": "integer"}}},
        },
    },
    "security": [{"bearer": []}, {"session": []}],
    "paths": {
        "/api/admin/openapi.json": {"get": _op("This document", public=True)},
        "/api/admin/status": {"get": _op("Stored knowledge version and the version this worker answers from")},
        "/api/admin/entries": {
            "get": _op("Search entries (id, questions, answers, tags)", query=("q", "tag")),
            "post": _op("Create an entry", body={"$ref": "#/components/schemas/Entry"}),
        },
        "/api/admin/entries/{entry_id}": {
            "get": _op("One entry", entry=True),
            "put": _op("Replace an entry (validated, versioned, audited)", entry=True,
                       body={"$ref": "#/components/schemas/Entry"}),
            "delete": _op("Delete an entry", entry=True),
        },
        "/api/admin/entries/{entry_id}/enabled": {"post": _op("Enable or disable", entry=True,
                                                             body=_obj(enabled={"type": "boolean"}))},
        "/api/admin/entries/{entry_id}/questions": {"post": _op("Add similar questions", entry=True,
                                                               body=_obj(questions=_STRS))},
        "/api/admin/entries/{entry_id}/questions/remove": {"post": _op("Remove one question", entry=True,
                                                                      body=_obj(question=_STR))},
        "/api/admin/entries/{entry_id}/history": {"get": _op("The entry's audit records, newest first",
                                                            entry=True)},
        "/api/admin/entries/{entry_id}/rollback": {"post": _op("Put the entry back as it was at a version",
                                                              entry=True, body=_obj(version={"type": "integer"}))},
        "/api/admin/history": {"get": _op("Audit log: who changed what, when", query=("limit",))},
        "/api/admin/rollback": {"post": _op("Put the whole knowledge base back as it was at a version",
                                            body=_obj(version={"type": "integer"}))},
        "/api/admin/validate": {"post": _op("Validate an entry without saving it",
                                            body={"$ref": "#/components/schemas/Entry"})},
        "/api/admin/try": {"post": _op("Decision, candidates with scores and reason for a question, exactly as "
                                       "a live message", body=_obj(text=_STR))},
        "/api/admin/preview": {"post": _op(
            "Regression check: replay recent real questions against a proposed change",
            body={"type": "object", "properties": {
                "entry": {"$ref": "#/components/schemas/Entry"},
                "add_questions": _obj(entry_id=_STR, questions=_STRS), "delete": _STR}})},
        "/api/admin/export": {"get": _op("Download the knowledge base (yaml, csv or xlsx)", query=("format",))},
        "/api/admin/import": {"post": _op(
            "Upload a knowledge file; dry_run=1 only shows what it adds, changes and removes; mode=merge keeps "
            "entries the file does not mention; a replace that removes many entries (or all) answers 409 unless "
            "replace_all=1; undo_version is the version to roll back to",
            query=("format", "filename", "dry_run", "mode", "replace_all"), raw_body=True)},
        "/api/admin/unanswered": {"get": _op("Unanswered questions clustered by meaning, with counts",
                                             query=("days",))},
        "/api/admin/unanswered/apply": {"post": _op("Add a cluster's phrasings to an existing entry",
                                                    body=_obj(entry_id=_STR, questions=_STRS))},
        "/api/admin/unanswered/draft": {"post": _op("Draft a new entry from a cluster (not saved)",
                                                    body=_obj(questions=_STRS))},
        "/api/admin/unanswered/dismiss": {"post": _op("Dismiss questions", body=_obj(questions=_STRS))},
        "/api/admin/dashboard": {"get": _op("Metrics over a period (7d, 30d, 90d or a number of days)",
                                            query=("period",))},
        "/api/admin/dashboard.csv": {"get": _op("The same metrics as CSV", query=("period",))},
    },
}
