"""Checks run before any ``kefu`` command starts anything (and by ``kefu check``).

A wrong port, store URL, missing credential or bad service-hours value used to surface as a
traceback from deep inside start-up, sometimes only after a long index build.  Here each is
found first and reported as one line naming the key or flag and what would fix it; every
problem of a configuration is reported at once, so one edit can fix them all.
"""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from bot.config import Config
from bot.errors import KefuError
from knowledge.schema import KnowledgeError, load_kb

STORE_SCHEMES = ("memory://", "redis://", "rediss://", "unix://", "redis+sentinel://")
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


def redact(url: str) -> str:
    """``url`` with any password replaced, for messages and logs (redis://:***@host:6379/0)."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


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


def _url_problem(url: str, key: str) -> str | None:
    if url and not url.startswith(("http://", "https://")):
        return f"{key}: expected an http:// or https:// URL, got {url!r}"
    return None


def _channel_problems(config: Config) -> list[str]:
    channels = config.channels
    problems: list[str] = []
    if channels.telegram.enabled:
        from bot.channels.telegram import check_config

        try:
            check_config(channels.telegram)
        except KefuError as exc:
            problems.append(str(exc))
    wechat = channels.wechat
    if wechat.enabled:
        if not wechat.token:
            problems.append("channels.wechat.token: required when channels.wechat.enabled is true "
                            "(the Token you chose in 服务器配置, e.g. ${WECHAT_TOKEN})")
        if wechat.encoding_aes_key and len(wechat.encoding_aes_key) != 43:
            problems.append("channels.wechat.encoding_aes_key: must be the 43-character EncodingAESKey "
                            f"from 服务器配置 (got {len(wechat.encoding_aes_key)} characters)")
        if bool(wechat.app_id) != bool(wechat.app_secret):
            missing = "app_secret" if wechat.app_id else "app_id"
            problems.append(f"channels.wechat.{missing}: required together with the other of app_id/app_secret "
                            "(基本配置; used to send customer-service messages)")
        if (problem := _url_problem(wechat.api_base_url, "channels.wechat.api_base_url")) is not None:
            problems.append(problem)
    wecom = channels.wecom
    if wecom.enabled:
        for key in ("corp_id", "secret", "token", "encoding_aes_key"):
            if not getattr(wecom, key):
                problems.append(f"channels.wecom.{key}: required when channels.wecom.enabled is true "
                                "(see docs/wechat.md)")
        if wecom.encoding_aes_key and len(wecom.encoding_aes_key) != 43:
            problems.append("channels.wecom.encoding_aes_key: must be the 43-character EncodingAESKey "
                            f"(got {len(wecom.encoding_aes_key)} characters)")
        if (problem := _url_problem(wecom.api_base_url, "channels.wecom.api_base_url")) is not None:
            problems.append(problem)
    return problems


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
    problems: list[str] = []
    intents = config.intents
    if intents.backend not in ("kefu", "rasa"):
        problems.append(f"intents.backend: expected kefu or rasa, got {intents.backend!r}")
    elif intents.backend == "rasa":
        if not intents.rasa.url:
            problems.append("intents.rasa.url: required when intents.backend is rasa "
                            "(e.g. http://127.0.0.1:5005)")
        elif (problem := _url_problem(intents.rasa.url, "intents.rasa.url")) is not None:
            problems.append(problem)
    for name in ("answer", "clarify", "clarify_margin", "suggestion_min"):
        value = getattr(intents.thresholds, name)
        if value > 1:
            problems.append(f"intents.thresholds.{name}: a confidence from 0 to 1, got {value:g}")
    if (problem := _url_problem(config.actions.server_url, "actions.server_url")) is not None:
        problems.append(problem)
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


def _desk_problems(config: Config) -> list[str]:
    from bot.agents.hours import ServiceHours

    problems: list[str] = []
    try:
        ServiceHours(config.service_hours)
    except KefuError as exc:
        problems.append(str(exc))
    for i, user in enumerate(config.agents.users):
        if not user.name:
            problems.append(f"agents.users[{i}].name: required")
        if user.role not in ("agent", "admin"):
            problems.append(f"agents.users[{i}].role: expected agent or admin, got {user.role!r}")
        if not user.password_hash:
            problems.append(f"agents.users[{i}].password_hash: required; make one with "
                            f"kefu agent add {user.name or 'NAME'} (it prints the entry)")
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
    if not url.startswith(STORE_SCHEMES):
        problems.append(f"store.url: expected memory://, redis://host:port/db, rediss:// or unix://, "
                        f"got {redact(url)!r}")
    elif workers > 1 and url.startswith("memory://"):
        problems.append(f"store.url: --workers {workers} needs a shared store: set store.url to redis://... "
                        "(memory:// lives inside one process, so each worker would see different conversations)")
    if workers > 1 and config.channels.telegram.enabled and config.channels.telegram.mode == "polling":
        problems.append(f"channels.telegram.mode: --workers {workers} and Telegram allows one poller per bot; "
                        "set it to webhook (see docs/telegram.md)")
    if channels:
        problems += _channel_problems(config)
    problems += _knowledge_problems(config)
    problems += _integration_problems(config)
    problems += _desk_problems(config)
    problems += _metrics_problems(config)
    return problems


def _metrics_problems(config: Config) -> list[str]:
    """``metrics.listen`` must be HOST:PORT (its own port is bound when the server starts)."""
    if not config.metrics.enabled or not config.metrics.listen:
        return []
    from bot.ops import listen_address

    try:
        listen_address(config.metrics)
    except KefuError as exc:
        return [str(exc)]
    return []


async def store_problem(config: Config) -> str | None:
    """Can the store be reached (and is it Redis)?  None when it answers."""
    url = config.store.url
    if url.startswith("memory://") or not url.startswith(STORE_SCHEMES):
        return None
    from bot.store import REDIS_ERRORS, connect

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
