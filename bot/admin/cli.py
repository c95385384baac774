"""``kefu kb history`` and ``kefu kb rollback``: the audit log and rollbacks from a terminal.

Kept here so ``bot/cli.py`` only gains the parser lines and one dispatch; the writes go through
the same :class:`KnowledgeService` as the console, so they are audited and every running
worker reloads within seconds.
"""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime

from bot.admin.knowledge_service import KnowledgeService, summary
from bot.config import Config
from bot.errors import KefuError
from bot.store import connect

COMMANDS = ("history", "rollback")


def add_commands(kb_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    hist = kb_sub.add_parser("history", help="who changed what and when (newest first)")
    hist.add_argument("entry", nargs="?", help="only this entry id")
    hist.add_argument("--limit", type=int, default=50)
    back = kb_sub.add_parser("rollback", help="put the knowledge base (or one entry) back as it was at VERSION")
    back.add_argument("version", type=int)
    back.add_argument("--entry", help="roll back only this entry id")


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


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
            print(f"rolled back {len(change.records)} entr{'y' if len(change.records) == 1 else 'ies'}; "
                  f"knowledge version {change.version}")
    finally:
        await redis.aclose()
