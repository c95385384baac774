"""The ``kefu`` command: serve, chat, actions, eval, kb.

Every :class:`KefuError` (bad config, malformed knowledge file, unreachable store) ends here as
one clear line on stderr and exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import preflight
from bot.config import Config, load_config, redact
from bot.errors import KefuError
from bot.logs import configure_logging
from bot.storage.client import connect
from knowledge.schema import KnowledgeBase, KnowledgeError, dump_kb, load_kb

log = logging.getLogger("kefu")


CONFIG_HELP = "config file (default: ./config.yaml if present, else built-in defaults)"
VERBOSE_HELP = "debug logging, and the traceback of an unexpected error"


def _common_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """``--config`` and ``-v`` before or after the subcommand: ``kefu serve --config my.yaml``
    works like ``kefu --config my.yaml serve`` (SUPPRESS keeps a subcommand from resetting them)."""
    default_config = None if top else argparse.SUPPRESS
    default_verbose: object = False if top else argparse.SUPPRESS
    parser.add_argument("--config", default=default_config, help=CONFIG_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", default=default_verbose, help=VERBOSE_HELP)


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subcommand parser below ``parser``, at any depth."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += [child, *_subparsers(child)]
    return found


def _listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="override server.host")
    parser.add_argument("--port", type=int, help="override server.port")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes sharing the port (needs store.url: redis://...)")


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake on the command line is one line (not the whole usage) and says
    where the help is; subcommand parsers inherit this class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"kefu: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kefu", description="Kefu 客服 — customer-service bot")
    _common_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server: web chat, webhooks, consoles")
    _listen_options(serve)
    serve.add_argument("--check", action="store_true", help="only run the start-up checks (like kefu check)")
    check = sub.add_parser("check", help="check configuration, ports, credentials and the store, then exit")
    _listen_options(check)

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
    imp.add_argument("--replace-all", action="store_true",
                     help="allow an import that removes many stored entries (or all: an empty file)")
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
    add.add_argument("--display-name", default="", help="the name customers see when this agent joins (e.g. 小李)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin (scripts)")
    tok = agent_sub.add_parser("token", help="issue an API token for scripts (Authorization: Bearer ...)")
    tok.add_argument("name")
    agent_sub.add_parser("list", help="list agents")
    remove = agent_sub.add_parser("remove", help="remove a stored agent: their sessions end, their API tokens stop")
    remove.add_argument("name")
    revoke = agent_sub.add_parser("revoke-tokens", help="revoke every API token of an agent")
    revoke.add_argument("name")
    unlock = agent_sub.add_parser("unlock", help="lift the failed-login limit on an agent's name")
    unlock.add_argument("name")
    for child in _subparsers(parser):
        _common_options(child, top=False)
    return parser


def _listen(config: Config, args: argparse.Namespace) -> preflight.Listen:
    """Where to listen, remembering whether a flag or a key said so (for the messages)."""
    host_key = "--host" if args.host else "server.host"
    port_key = "--port" if args.port is not None else "server.port"
    return preflight.Listen(args.host or config.server.host,
                            args.port if args.port is not None else config.server.port, host_key, port_key)


async def _check(config: Config, args: argparse.Namespace) -> None:
    listen = _listen(config, args)
    await preflight.check(config, listen, args.workers)
    channels = [name for name in ("web", "telegram", "wechat", "wecom") if getattr(config.channels, name).enabled]
    print(f"kefu check: OK (config {config.source}; store {redact(config.store.url)}; "
          f"channels {', '.join(channels) or 'none'}; http://{listen.host}:{listen.port} is free; "
          f"workers {args.workers})")


async def _prepare_serve(config: Config, listen: preflight.Listen, workers: int) -> socket.socket:
    """Every check, then the port bound (not yet listening): nothing slow starts before this."""
    problems = preflight.config_problems(config, listen, workers)
    if (problem := await preflight.store_problem(config)) is not None:
        problems.append(problem)
    if problems:
        raise preflight.PreflightFailed(problems)
    if not config.store.url.startswith("memory://"):
        await _check_data(config)
    return preflight.bind(listen)


def _serve(config: Config, args: argparse.Namespace) -> Awaitable[None] | None:
    if args.check:
        return _check(config, args)
    from bot.workers import METRICS_DIR_ENV, fresh_metrics_dir

    if os.environ.get(METRICS_DIR_ENV):
        fresh_metrics_dir()  # a previous run's samples must not add to this one's (before any metric exists)
    listen = _listen(config, args)
    if args.workers == 1:
        return _serve_one(config, listen, args.verbose)
    sock = asyncio.run(_prepare_serve(config, listen, args.workers))
    try:
        asyncio.run(_warm_up(config))
    except BaseException:
        sock.close()
        raise
    _serve_workers(config, listen, args.workers, sock)
    return None


def _index_message(config: Config) -> None:
    mode = "embeddings" if config.intents.embeddings else "lexical"
    log.info("checks passed; loading the knowledge base and building the search index (%s, cache %s); "
             "the port opens when it is ready", mode, config.knowledge.cache_dir)


async def _warm_up(config: Config) -> None:
    """Seed the store and build the on-disk index once, with progress, so workers start from the cache."""
    from bot.app import start_runtime

    _index_message(config)
    runtime = await start_runtime(config, progress=sys.stderr.isatty())
    await runtime.close()


async def _serve_one(config: Config, listen: preflight.Listen, verbose: bool) -> None:
    """Check, bind, build, then listen: the URL refuses connections until it can answer them."""
    import uvicorn

    from bot.app import compose
    from bot.ops import start_metrics_listener
    from bot.workers import settle_heap_after_loads

    sock = await _prepare_serve(config, listen, 1)
    _index_message(config)
    kefu = compose(config)
    settle_heap_after_loads()
    await kefu.runtime.load(progress=sys.stderr.isatty())  # the lifespan finds it loaded
    start_metrics_listener(config)

    failure: list[BaseException] = []
    app = _quiet_startup(kefu.asgi, failure, verbose)
    # Open web-chat long polls end within moments of a shutdown instead of holding it.
    server = uvicorn.Server(uvicorn.Config(app, host=listen.host, port=listen.port, log_level="info",
                                           proxy_headers=True, lifespan="on", log_config=_uvicorn_log_config(config),
                                           timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS))

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.02)
        log.info("Kefu listening on http://%s:%d (config: %s, workers: 1)", listen.host, listen.port, config.source)

    announcer = asyncio.create_task(announce())
    try:
        await server.serve(sockets=[sock])
    except SystemExit:
        if failure:
            raise _startup_error(failure[0]) from None
        raise
    finally:
        announcer.cancel()
        sock.close()


def _quiet_startup(app: ASGIApp, failure: list[BaseException], verbose: bool) -> ASGIApp:
    """Keep a failed start-up (a channel refusing its credentials) from printing a traceback:
    the exception is kept for one clear line; ``-v`` lets uvicorn log the traceback too."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def quiet_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                error = sys.exc_info()[1]
                if error is not None:
                    failure.append(error)
                if not verbose:
                    message = {**message, "message": ""}
            await send(message)

        await app(scope, receive, quiet_send)

    return wrapped


def _startup_error(error: BaseException) -> KefuError:
    if isinstance(error, KefuError | KnowledgeError):
        return KefuError(str(error))
    return KefuError(f"start-up failed: {type(error).__name__}: {error} (kefu -v serve shows the traceback)")


def _serve_workers(config: Config, listen: preflight.Listen, workers: int, sock: socket.socket) -> None:
    """Workers share ``sock`` (bound with ``TCP_NODELAY`` by the preflight, not yet listening):
    it listens once the first worker has loaded, and every worker writes its metrics to one
    directory that ``/metrics`` (or ``metrics.listen`` here in the supervisor) adds up."""
    from bot.app import CONFIG_ENV
    from bot.ops import start_metrics_listener
    from bot.workers import serve_workers

    log.info("Kefu starting %d workers on http://%s:%d (config: %s); each answers once it has loaded "
             "the index built above", workers, listen.host, listen.port, config.source)
    # Each worker process builds its own app from the same config file (uvicorn imports the factory).
    os.environ[CONFIG_ENV] = "" if config.source == "<defaults>" else str(Path(config.source).resolve())
    serve_workers("bot.app:app_from_environment", workers, listen.host, listen.port,
                  lambda: start_metrics_listener(config), sock=sock, factory=True, log_level="info",
                  proxy_headers=True, log_config=_uvicorn_log_config(config),
                  timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS)


def _uvicorn_log_config(config: Config) -> dict[str, Any] | None:
    """JSON logs: uvicorn's own loggers go through Kefu's root handler instead of uvicorn's text ones."""
    from uvicorn.config import LOGGING_CONFIG

    return None if config.logging.format == "json" else LOGGING_CONFIG


async def _check_data(config: Config) -> None:
    """Data newer than this code, or a manual migration pending: one line, before anything starts."""
    from bot.migrations import check_on_start

    redis = connect(config.store.url)
    try:
        await check_on_start(redis)
    finally:
        await redis.aclose()


GRACEFUL_SHUTDOWN_SECONDS = 3


def _actions(config: Config, args: argparse.Namespace) -> None:
    try:
        import rasa_sdk  # noqa: F401  (optional extra)
    except ImportError:
        raise KefuError("kefu actions needs rasa-sdk: pip install 'kefu[rasa]'") from None
    from bot.rasa.server import serve

    serve(config, args.host or config.server.host, args.port if args.port is not None else config.actions.port)


async def _chat(config: Config) -> None:
    from bot.app import start_runtime
    from bot.channels.terminal import chat_loop

    runtime = await start_runtime(config)
    try:
        await chat_loop(runtime.engine)
    finally:
        await runtime.close()


async def _eval(config: Config, args: argparse.Namespace) -> None:
    from bot.app import start_runtime
    from bot.evaluation import evaluate, read_cases
    from bot.runtime import default_kb_path

    cases = read_cases(args.cases)
    kb = load_kb(args.kb or config.knowledge.path or default_kb_path())
    memory = config.with_overrides(store=type(config.store)(url="memory://"))
    runtime = await start_runtime(memory, kb=kb, progress=not args.no_progress)
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
    from knowledge.imports import removal_problem
    from knowledge.service import KnowledgeService

    if args.kb_command in admin_cli.COMMANDS:
        await admin_cli.run(config, args)
    elif args.kb_command == "validate":
        kb = load_kb(args.file)
        if not len(kb):
            raise KefuError(f"{args.file}: no entries; a knowledge file is a YAML list of entries with id, "
                            "questions and answer (importing this one would remove every stored entry)")
        print(f"{args.file}: OK, {len(kb)} entries, {kb.phrasing_count()} questions")
    elif args.kb_command == "import":
        kb = load_kb(args.file)  # validated in full before anything is written
        if config.store.url.startswith("memory://"):
            raise KefuError("store.url is memory://, so an import would vanish when this command exits; "
                            "point store.url at Redis (redis://...) or set knowledge.path to this file")
        redis = connect(config.store.url)
        try:
            service = KnowledgeService(redis)
            if not args.replace_all:
                problem = removal_problem(str(args.file), await service.entries(), kb, "--replace-all")
                if problem is not None:
                    raise KefuError(problem)
            change = await service.replace_all(kb, "cli", note=str(args.file))  # audited
        finally:
            await redis.aclose()
        if not change.records:
            print(f"{args.file}: the store already holds exactly these {len(kb)} entries; "
                  f"knowledge version {change.version} (nothing changed)")
            return
        removed = sum(1 for r in change.records if r.get("after") is None)
        print(f"imported {len(kb)} entries ({kb.phrasing_count()} questions) from {args.file}, "
              f"{removed} removed; knowledge version {change.version} (undo: kefu kb rollback {change.version - 1})")
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
                  + (f"      display_name: {args.display_name}\n" if args.display_name else "") +
                  f"      password_hash: \"{hash_password(password)}\"")
            return
    elif not durable:
        raise KefuError("store.url is memory://; API tokens and stored agents need Redis (redis://...)")
    redis = connect(config.store.url)
    try:
        directory = AgentDirectory(redis, config.agents)
        if args.agent_command == "add":
            await directory.add(args.name, password, args.role, args.display_name)
            print(f"agent {args.name} ({args.role}) saved; they can log in at /agent")
        elif args.agent_command == "token":
            print(await directory.issue_token(args.name))
        elif args.agent_command == "remove":
            revoked = await directory.remove(args.name)
            print(f"agent {args.name} removed; their sessions ended and {revoked} API token(s) were revoked")
        elif args.agent_command == "revoke-tokens":
            print(f"{await directory.revoke_tokens(args.name)} API token(s) of {args.name} revoked")
        elif args.agent_command == "unlock":
            await directory.unlock(args.name)
            print(f"{args.name} may log in again from every address")
        else:
            for agent in await directory.all():
                print(f"{agent.name:<24} {agent.role}")
    finally:
        await redis.aclose()


async def _preflight(config: Config, args: argparse.Namespace) -> None:
    """The checks each command needs before it starts anything (``serve`` runs its own)."""
    command = args.command
    if command in ("serve", "check"):
        return
    problems: list[str] = []
    if command in ("chat", "actions", "eval"):
        problems += preflight.config_problems(config, channels=False)
    listen = None
    if command == "actions":
        listen = preflight.Listen(args.host or config.server.host,
                                  args.port if args.port is not None else config.actions.port,
                                  "--host" if args.host else "server.host",
                                  "--port" if args.port is not None else "actions.port")
        problem = preflight.port_problem(listen.port, listen.port_key)
        problems += [problem] if problem else []
    offline = command == "eval" or (command == "kb" and args.kb_command == "validate")
    if not offline and (problem := await preflight.store_problem(config)) is not None:
        problems.append(problem)
    if listen is not None and not problems:
        preflight.bind(listen).close()  # a port in use: one line now, not a uvicorn error later
    if problems:
        raise preflight.PreflightFailed(problems)


def _fail(message: str) -> int:
    for line in message.splitlines() or [""]:
        print(f"kefu: error: {line}", file=sys.stderr)
    return 2


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.verbose, mask=False)
    store_url = "store.url"
    try:
        config = load_config(args.config)
        store_url = config.store.url
        configure_logging(args.verbose, mask=config.security.mask_logs, fmt=config.logging.format)
        asyncio.run(_preflight(config, args))
        actions: dict[str, Callable[[], Awaitable[None] | None]] = {
            "serve": lambda: _serve(config, args),
            "check": lambda: _check(config, args),
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
        sys.stdout.flush()
    except (KefuError, KnowledgeError) as exc:
        return _fail(str(exc))
    except BrokenPipeError:  # `kefu kb export | head -1`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except (RedisConnectionError, RedisTimeoutError) as exc:
        return _fail(f"store.url: cannot reach the store ({exc}); is Redis running at {redact(store_url)}?")
    except OSError as exc:  # a file named on the command line: missing, unreadable, a directory
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug, not bad input: still one line unless -v asks for the traceback
        if args.verbose:
            traceback.print_exc()
        return _fail(f"unexpected {type(exc).__name__}: {exc} (kefu -v shows the traceback; please report it)")
    return 0


def main() -> None:
    sys.exit(run())
