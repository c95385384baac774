"""Checks run before any ``kefu`` command starts anything (and by ``kefu check``).

A wrong port, store URL, missing credential or bad service-hours value used to surface as a
traceback from deep inside start-up, sometimes only after a long index build.  Here each is
found first and reported as one line naming the key or flag and what would fix it; every
problem of a configuration is reported at once, so one edit can fix them all.  The rules about
the configuration's values are the sections' own (``problems()`` in :mod:`bot.config`); what is
here needs I/O (files, imports, Redis, a port) or the command line.
"""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from bot.config import STORE_SCHEMES, Config, redact
from bot.errors import KefuError
from knowledge.schema import KnowledgeError, load_kb

PING_SECONDS = 3.0


class PreflightFailed(KefuError):
    """One or more problems, each a complete one-line message."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Listen:
    """Where a server will listen, and which key or flag each value came from (for messages)."""

    host: str
    port: int
    host_key: str = "server.host"
    port_key: str = "server.port"


def port_problem(port: int, key: str) -> str | None:
    if not 1 <= port <= 65535:
        return f"{key}: {port} is not a TCP port; use a number from 1 to 65535 (e.g. 8080)"
    return None


def bind(listen: Listen) -> socket.socket:
    """A socket bound to ``listen`` but not yet listening: connections are refused until the
    server behind it can answer, and a port in use is reported before any index is built."""
    try:
        infos = socket.getaddrinfo(listen.host, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise PreflightFailed([f"{listen.host_key}: cannot resolve {listen.host!r}; "
                               "use an address of this machine such as 127.0.0.1 or 0.0.0.0"]) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            problem = (f"{listen.port_key}: port {listen.port} on {listen.host} is already in use "
                       "(another kefu serve?); stop it or choose a free port")
        elif exc.errno == errno.EACCES:
            problem = (f"{listen.port_key}: not allowed to listen on port {listen.port}; "
                       "ports below 1024 need root: use 8080 behind a reverse proxy")
        else:
            problem = f"{listen.host_key}: cannot listen on {listen.host}:{listen.port} ({exc.strerror or exc})"
        raise PreflightFailed([problem]) from None
    return sock


def _knowledge_problems(config: Config) -> list[str]:
    problems: list[str] = []
    knowledge = config.knowledge
    if knowledge.path:
        path = Path(knowledge.path).expanduser()
        if not path.is_file():
            problems.append(f"knowledge.path: no file {knowledge.path!r}; fix the path or leave it empty "
                            "for the shipped FAQ")
        else:
            try:
                load_kb(path)
            except KnowledgeError as exc:
                problems.append(f"knowledge.path: {exc}")
    if knowledge.out_of_scope_path and not Path(knowledge.out_of_scope_path).expanduser().is_file():
        problems.append(f"knowledge.out_of_scope_path: no file {knowledge.out_of_scope_path!r}; "
                        "fix the path or leave it empty")
    cache = Path(knowledge.cache_dir).expanduser()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        writable = os.access(cache, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        problems.append(f"knowledge.cache_dir: cannot write to {knowledge.cache_dir!r}; "
                        "choose a writable directory (the search index is cached there)")
    return problems


def _needs_actions(config: Config) -> bool:
    if config.actions.module or config.actions.server_url:
        return True
    if config.knowledge.path and Path(config.knowledge.path).expanduser().is_file():
        try:
            return any(entry.action for entry in load_kb(Path(config.knowledge.path).expanduser()))
        except KnowledgeError:
            return False
    return False


def _importable(module: str) -> bool:
    """Whether ``module`` can be found, with the current directory importable (as when run)."""
    import sys

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _integration_problems(config: Config) -> list[str]:
    problems = [*config.intents.problems(), *config.actions.problems()]
    if config.actions.module and importlib.util.find_spec("rasa_sdk") is None:
        problems.append("actions.module: business actions need rasa-sdk, which is not installed: "
                        "pip install 'kefu[rasa]' (or remove actions.module)")
    elif config.actions.module and not _importable(config.actions.module):
        problems.append(f"actions.module: no module {config.actions.module!r} importable from "
                        f"{os.getcwd()}; run kefu from the directory above it or fix the name")
    elif _needs_actions(config) and not (config.actions.module or config.actions.server_url):
        problems.append("actions.module: the knowledge base names business actions; set actions.module "
                        "or actions.server_url (docs/rasa.md)")
    return problems


def config_problems(config: Config, listen: Listen | None = None, workers: int = 1,
                    channels: bool = True) -> list[str]:
    """Everything that can be checked without touching the network, in key order
    (``channels=False`` for commands that run none, such as ``kefu chat``)."""
    problems: list[str] = []
    if listen is not None and (problem := port_problem(listen.port, listen.port_key)) is not None:
        problems.append(problem)
    if workers < 1:
        problems.append(f"--workers: must be at least 1, got {workers}")
    url = config.store.url
    if store_problems := config.store.problems():
        problems += store_problems
    elif workers > 1 and url.startswith("memory://"):
        problems.append(f"store.url: --workers {workers} needs a shared store: set store.url to redis://... "
                        "(memory:// lives inside one process, so each worker would see different conversations)")
    if workers > 1 and config.channels.telegram.enabled and config.channels.telegram.mode == "polling":
        problems.append(f"channels.telegram.mode: --workers {workers} and Telegram allows one poller per bot; "
                        "set it to webhook (see docs/telegram.md)")
    if channels:
        problems += config.channels.problems()
    problems += _knowledge_problems(config)
    problems += _integration_problems(config)
    problems += config.service_hours.problems() + config.agents.problems()
    problems += config.metrics.problems()
    return problems


async def store_problem(config: Config) -> str | None:
    """Can the store be reached (and is it Redis)?  None when it answers."""
    url = config.store.url
    if url.startswith("memory://") or not url.startswith(STORE_SCHEMES):
        return None
    from bot.storage.client import REDIS_ERRORS, connect

    try:
        redis = connect(url)
    except (KefuError, ValueError) as exc:
        return f"store.url: {exc}"
    try:
        await asyncio.wait_for(redis.ping(), PING_SECONDS)
    except (TimeoutError, *REDIS_ERRORS) as exc:
        return (f"store.url: cannot reach Redis at {redact(url)} ({exc or 'no answer'}); "
                "start Redis or fix the host, port or password")
    except Exception as exc:  # wrong password, TLS to a plain port, not Redis at all
        return f"store.url: {redact(url)} did not answer like Redis ({type(exc).__name__}: {exc})"
    finally:
        await redis.aclose()
    return None


async def check(config: Config, listen: Listen | None = None, workers: int = 1, channels: bool = True) -> None:
    """Run every check (binding ``listen`` for a moment); raise :class:`PreflightFailed` with all
    problems found."""
    problems = config_problems(config, listen, workers, channels)
    if (problem := await store_problem(config)) is not None:
        problems.append(problem)
    if listen is not None and not any(p.startswith(listen.port_key) for p in problems):
        try:
            bind(listen).close()
        except PreflightFailed as exc:
            problems += exc.problems
    if problems:
        raise PreflightFailed(problems)
