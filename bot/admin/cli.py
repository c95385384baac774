"""``kefu kb history | rollback | save | enable | disable | delete | add-question | remove-question |
search``: knowledge editing, the audit log and rollbacks from a terminal.

Kept here so ``bot/cli.py`` only gains the parser lines and one dispatch; the writes go through
the same :class:`KnowledgeService` as the console, so they are audited and every running
worker reloads within seconds.
"""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime
from pathlib import Path

from bot.config import Config
from bot.errors import KefuError
from bot.storage.client import connect
from knowledge.schema import load_kb, question_clashes
from knowledge.service import Change, KnowledgeService, summary

COMMANDS = ("history", "rollback", "save", "enable", "disable", "delete", "add-question", "remove-question",
            "search")


def add_commands(kb_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    hist = kb_sub.add_parser("history", help="who changed what and when (newest first)")
    hist.add_argument("entry", nargs="?", help="only this entry id")
    hist.add_argument("--limit", type=int, default=50)
    back = kb_sub.add_parser("rollback", help="put the knowledge base (or one entry) back as it was at VERSION")
    back.add_argument("version", type=int)
    back.add_argument("--entry", help="roll back only this entry id")
    save = kb_sub.add_parser("save", help="create or update the entries in FILE (others stay as they are)")
    save.add_argument("file", type=Path)
    for name, what in (("enable", "let the bot use an entry again"), ("disable", "keep an entry but stop using it"),
                       ("delete", "delete an entry (kefu kb rollback brings it back)")):
        kb_sub.add_parser(name, help=what).add_argument("entry")
    add = kb_sub.add_parser("add-question", help="add similar questions to an entry")
    add.add_argument("entry")
    add.add_argument("questions", nargs="+")
    rm = kb_sub.add_parser("remove-question", help="remove one question from an entry")
    rm.add_argument("entry")
    rm.add_argument("question")
    find = kb_sub.add_parser("search", help="entries whose id, questions, answers or tags contain QUERY")
    find.add_argument("query", nargs="?", default="")
    find.add_argument("--tag", default="")


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _entries(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"


async def _edit(service: KnowledgeService, args: argparse.Namespace) -> Change:
    """One audited change, the same path as the admin console's (validation, history, live reload)."""
    who, command = _who(), args.kb_command
    if command == "save":
        kb = load_kb(args.file)  # every entry validated, with file and line, before anything is written
        merged = {e.id: e for e in await service.entries()} | {e.id: e for e in kb.entries}
        clashes = [f"{args.file}: entry {entry.id!r}: {clash}" for entry in kb.entries
                   for clash in question_clashes(entry, merged.values())]
        if clashes:
            raise KefuError("\n".join(clashes))
        return await service.apply({entry.id: entry for entry in kb.entries}, who, "cli-save", note=str(args.file))
    if command in ("enable", "disable"):
        return await service.set_enabled(args.entry, command == "enable", who)
    if command == "delete":
        return await service.delete(args.entry, who)
    if command == "add-question":
        return await service.add_questions(args.entry, args.questions, who)
    return await service.remove_question(args.entry, args.question, who)


async def run(config: Config, args: argparse.Namespace) -> None:
    if config.store.url.startswith("memory://"):
        raise KefuError("store.url is memory://: there is no lasting history; point store.url at Redis")
    redis = connect(config.store.url)
    try:
        service = KnowledgeService(redis)
        if args.kb_command == "history":
            records = await service.history(args.entry, args.limit)
            print(f"# knowledge version {await service.version()}, {len(records)} change(s) shown")
            for r in records:
                when = datetime.fromtimestamp(float(r["at"]), UTC).strftime("%Y-%m-%d %H:%M:%S")
                fields = ",".join(r["fields"])
                print(f"v{r['version']:<5} {when}Z  {r['who']:<16} {r['action']:<15} {r['entry_id']}"
                      + (f" [{fields}]" if fields else "") + (f"  {r['note']}" if r.get("note") else ""))
        elif args.kb_command == "rollback":
            if args.entry:
                change = await service.rollback_entry(args.entry, args.version, _who())
            else:
                change = await service.rollback_all(args.version, _who())
            for r in change.records:
                s = summary(r)
                print(f"{s['entry_id']}: {'deleted' if s['after'] is None else 'restored'}")
            print(f"rolled back {_entries(len(change.records))}; knowledge version {change.version}"
                  + (f" (undo: kefu kb rollback {change.version - 1})" if change.records else ""))
        elif args.kb_command == "search":
            found = await service.search(args.query, args.tag)
            for entry in found:
                print(f"{entry.id:<28} {entry.title}" + ("" if entry.enabled else "  [disabled]"))
            print(f"# {_entries(len(found))}")
        else:
            change = await _edit(service, args)
            undo = f"; undo: kefu kb rollback {change.version - 1}" if change.records else ""
            print(f"{args.kb_command}: {_entries(len(change.records))} "
                  f"changed; knowledge version {change.version} (every worker answers from it within seconds{undo})")
    finally:
        await redis.aclose()
