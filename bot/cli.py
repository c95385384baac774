"""The ``kefu`` command: serve, chat, actions, eval, kb.

Every :class:`KefuError` (bad config, malformed knowledge file, unreachable store) ends here as
one clear line on stderr and exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.config import Config, load_config
from bot.errors import KefuError
from bot.logs import configure_logging
from bot.store import REDIS_ERRORS, connect
from knowledge.schema import KnowledgeBase, KnowledgeError, dump_kb, load_kb

log = logging.getLogger("kefu")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kefu", description="Kefu 客服 — customer-service bot")
    parser.add_argument("--config", help="config file (default: ./config.yaml if present, else built-in defaults)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server: web chat, webhooks, consoles")
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes sharing the port (needs store.url: redis://...)")

    sub.add_parser("chat", help="talk to the bot in the terminal (reads stdin, one message per line)")

    act = sub.add_parser("actions", help="serve Kefu's knowledge base and handoff to a Rasa assistant "
                                         "(rasa-sdk action server: /webhook, /actions, /health)")
    act.add_argument("--host", help="listen address (default: server.host)")
    act.add_argument("--port", type=int, help="listen port (default: actions.port, 5055)")

    ev = sub.add_parser("eval", help="score labelled cases through the live decision path")
    ev.add_argument("cases", type=Path, help="JSONL file of {\"text\", \"expect\"}")
    ev.add_argument("--kb", type=Path, help="knowledge file to use instead of the configured one")
    ev.add_argument("--out", type=Path, required=True, help="where to write one decision per line")
    ev.add_argument("--no-progress", action="store_true")

    kb = sub.add_parser("kb", help="manage the knowledge base in the store")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    imp = kb_sub.add_parser("import", help="replace the stored knowledge base with FILE (all or nothing)")
    imp.add_argument("file", type=Path)
    exp = kb_sub.add_parser("export", help="write the stored knowledge base as YAML")
    exp.add_argument("--out", type=Path, help="file to write (default: stdout)")
    kb_sub.add_parser("list", help="list stored entries")
    val = kb_sub.add_parser("validate", help="check a knowledge file without importing it")
    val.add_argument("file", type=Path)
    from bot.admin import cli as admin_cli

    admin_cli.add_commands(kb_sub)  # history, rollback

    mig = sub.add_parser("migrate", help="bring the stored data to this version's layout (after an upgrade)")
    mig.add_argument("--check", action="store_true", help="only say which data version the store holds")

    purge = sub.add_parser("purge", help="delete customer data older than the retention period (run daily)")
    purge.add_argument("--days", type=float, help="retention in days (default: store.transcript_ttl_days)")

    agent = sub.add_parser("agent", help="manage agent-console logins and API tokens")
    agent_sub = agent.add_subparsers(dest="agent_command", required=True)
    add = agent_sub.add_parser("add", help="add (or reset) an agent; prompts for the password")
    add.add_argument("name")
    add.add_argument("--role", choices=["agent", "admin"], default="agent")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin (scripts)")
    tok = agent_sub.add_parser("token", help="issue an API token for scripts (Authorization: Bearer ...)")
    tok.add_argument("name")
    agent_sub.add_parser("list", help="list agents")
    return parser


def _serve(config: Config, args: argparse.Namespace) -> None:
    import uvicorn

    from bot.workers import METRICS_DIR_ENV, fresh_metrics_dir

    if os.environ.get(METRICS_DIR_ENV):
        fresh_metrics_dir()  # a previous run's samples must not add to this one's (before any metric exists)
    from bot.server import CONFIG_ENV, create_app

    server = config.server
    host = args.host or server.host
    port = args.port if args.port is not None else server.port
    workers = args.workers
    if not config.store.url.startswith("memory://"):
        asyncio.run(_check_data(config))  # data newer than this code: one line, before any worker starts
    log.info("Kefu listening on http://%s:%d (config: %s, workers: %d)", host, port, config.source, workers)
    # JSON logs: uvicorn's own loggers go through Kefu's root handler instead of uvicorn's text ones
    from uvicorn.config import LOGGING_CONFIG

    log_config = None if config.logging.format == "json" else LOGGING_CONFIG
    from bot.ops import start_metrics_listener

    if workers == 1:
        start_metrics_listener(config)
        uvicorn.run(create_app(config), host=host, port=port, log_level="info", proxy_headers=True,
                    log_config=log_config)
        return
    _check_workers(config, workers)
    # Each worker process builds its own app from the same config file (uvicorn imports the factory).
    os.environ[CONFIG_ENV] = "" if config.source == "<defaults>" else str(Path(config.source).resolve())
    from bot.workers import serve_workers

    serve_workers("bot.server:app_from_environment", workers, host, port, lambda: start_metrics_listener(config),
                  factory=True, log_level="info", proxy_headers=True, log_config=log_config)


async def _check_data(config: Config) -> None:
    from bot.migrations import check_on_start

    redis = connect(config.store.url)
    try:
        await check_on_start(redis)
    finally:
        await redis.aclose()


def _check_workers(config: Config, workers: int) -> None:
    if workers < 1:
        raise KefuError("--workers must be at least 1")
    if config.store.url.startswith("memory://"):
        raise KefuError(f"--workers {workers} needs a shared store: set store.url to redis://... "
                        "(memory:// lives inside one process, so each worker would see different conversations)")
    telegram = config.channels.telegram
    if telegram.enabled and telegram.mode == "polling":
        raise KefuError(f"--workers {workers}: Telegram allows one poller per bot; "
                        "set channels.telegram.mode to webhook (see docs/telegram.md)")


def _actions(config: Config, args: argparse.Namespace) -> None:
    try:
        import rasa_sdk  # noqa: F401  (optional extra)
    except ImportError:
        raise KefuError("kefu actions needs rasa-sdk: pip install 'kefu[rasa]'") from None
    from bot.rasa.server import serve

    serve(config, args.host or config.server.host, args.port if args.port is not None else config.actions.port)


async def _chat(config: Config) -> None:
    from bot.channels.terminal import chat_loop
    from bot.runtime import Runtime

    runtime = await Runtime.start(config)
    try:
        await chat_loop(runtime.engine)
    finally:
        await runtime.close()


async def _eval(config: Config, args: argparse.Namespace) -> None:
    from bot.evaluation import evaluate, read_cases
    from bot.runtime import Runtime, default_kb_path

    cases = read_cases(args.cases)
    kb = load_kb(args.kb or config.knowledge.path or default_kb_path())
    memory = config.with_overrides(store=type(config.store)(url="memory://"))
    runtime = await Runtime.start(memory, kb=kb, progress=not args.no_progress)
    try:
        with args.out.open("w", encoding="utf-8") as out:
            summary = await evaluate(runtime, cases, out, progress=not args.no_progress)
    finally:
        await runtime.close()
    print(summary.table())
    print(f"decisions written to {args.out}")


async def _stored_kb(config: Config) -> tuple[KnowledgeBase, str]:
    from bot.runtime import default_kb_path
    from knowledge.repository import KnowledgeRepository

    redis = connect(config.store.url)
    try:
        stored = await KnowledgeRepository(redis).load()
    finally:
        await redis.aclose()
    if stored is not None:
        return stored, f"store {config.store.url}"
    path = config.knowledge.path or str(default_kb_path())
    return load_kb(path), f"{path} (the store is empty; this file seeds it on start)"


async def _migrate(config: Config, args: argparse.Namespace) -> None:
    from bot.migrations import DATA_VERSION, migrate, pending, stored_version

    if config.store.url.startswith("memory://"):
        raise KefuError("kefu migrate works on the shared store; store.url is memory://, which starts empty")
    redis = connect(config.store.url)
    try:
        if args.check:
            version = await stored_version(redis)
            if version is None:
                print(f"empty store; this Kefu writes data version {DATA_VERSION}")
            else:
                steps = pending(version)
                print(f"data version {version}; this Kefu: {DATA_VERSION}; "
                      + (f"{len(steps)} migration(s) pending" if steps else "nothing to do"))
            return
        await migrate(redis, report=print)
    finally:
        await redis.aclose()


async def _purge(config: Config, args: argparse.Namespace) -> None:
    import time

    from bot.retention import purge

    days = args.days if args.days is not None else config.store.transcript_ttl_days
    if days <= 0:
        raise KefuError("--days must be positive")
    if config.store.url.startswith("memory://"):
        raise KefuError("kefu purge works on the shared store; with store.url: memory:// the data lives only "
                        "inside the serving process and expires there by itself")
    redis = connect(config.store.url)
    try:
        report = await purge(redis, time.time() - days * 86_400)
    finally:
        await redis.aclose()
    print(f"{report.summary()} (older than {days:g} days)")


async def _kb(config: Config, args: argparse.Namespace) -> None:
    from bot.admin import cli as admin_cli
    from bot.admin.knowledge_service import KnowledgeService

    if args.kb_command in admin_cli.COMMANDS:
        await admin_cli.run(config, args)
    elif args.kb_command == "validate":
        kb = load_kb(args.file)
        print(f"{args.file}: OK, {len(kb)} entries, {kb.phrasing_count()} questions")
    elif args.kb_command == "import":
        kb = load_kb(args.file)  # validated in full before anything is written
        if config.store.url.startswith("memory://"):
            raise KefuError("store.url is memory://, so an import would vanish when this command exits; "
                            "point store.url at Redis (redis://...) or set knowledge.path to this file")
        redis = connect(config.store.url)
        try:
            version = (await KnowledgeService(redis).replace_all(kb, "cli", note=str(args.file))).version  # audited
        finally:
            await redis.aclose()
        print(f"imported {len(kb)} entries ({kb.phrasing_count()} questions) from {args.file}; "
              f"knowledge version {version}")
    elif args.kb_command == "export":
        kb, source = await _stored_kb(config)
        text = dump_kb(kb)
        if args.out:
            args.out.write_text(text, encoding="utf-8")
            print(f"exported {len(kb)} entries from {source} to {args.out}")
        else:
            sys.stdout.write(text)
    elif args.kb_command == "list":
        kb, source = await _stored_kb(config)
        print(f"# {len(kb)} entries from {source}")
        for entry in kb:
            state = "" if entry.enabled else "  [disabled]"
            langs = "/".join(sorted(entry.answer))
            print(f"{entry.id:<28} {len(entry.questions):>2}q  {langs:<6} {entry.title}{state}")


def _read_password(from_stdin: bool) -> str:
    import getpass

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise KefuError("the passwords do not match")
    if len(password) < 8:
        raise KefuError("a password needs at least 8 characters")
    return password


async def _agent(config: Config, args: argparse.Namespace) -> None:
    from bot.agents.auth import AgentDirectory, hash_password

    durable = not config.store.url.startswith("memory://")
    if args.agent_command == "add":
        password = _read_password(args.password_stdin)
        if not durable:  # nowhere lasting to store it: print the config entry instead
            print("store.url is memory://, so add this agent to the config file instead:\n"
                  f"agents:\n  users:\n    - name: {args.name}\n      role: {args.role}\n"
                  f"      password_hash: \"{hash_password(password)}\"")
            return
    elif not durable:
        raise KefuError("store.url is memory://; API tokens and stored agents need Redis (redis://...)")
    redis = connect(config.store.url)
    try:
        directory = AgentDirectory(redis, config.agents)
        if args.agent_command == "add":
            await directory.add(args.name, password, args.role)
            print(f"agent {args.name} ({args.role}) saved; they can log in at /agent")
        elif args.agent_command == "token":
            print(await directory.issue_token(args.name))
        else:
            for agent in await directory.all():
                print(f"{agent.name:<24} {agent.role}")
    finally:
        await redis.aclose()


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.verbose, mask=False)
    try:
        config = load_config(args.config)
        configure_logging(args.verbose, mask=config.security.mask_logs, fmt=config.logging.format)
        actions: dict[str, Callable[[], Awaitable[None] | None]] = {
            "serve": lambda: _serve(config, args),
            "chat": lambda: _chat(config),
            "actions": lambda: _actions(config, args),
            "eval": lambda: _eval(config, args),
            "kb": lambda: _kb(config, args),
            "agent": lambda: _agent(config, args),
            "purge": lambda: _purge(config, args),
            "migrate": lambda: _migrate(config, args),
        }
        result = actions[args.command]()
        if result is not None:
            asyncio.run(result)  # type: ignore[arg-type]
    except (KefuError, KnowledgeError) as exc:
        print(f"kefu: error: {exc}", file=sys.stderr)
        return 2
    except REDIS_ERRORS as exc:
        print(f"kefu: error: cannot reach the store ({exc}); is Redis running at store.url?", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def main() -> None:
    sys.exit(run())
