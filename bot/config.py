"""Configuration: ``config.yaml`` → typed, validated dataclasses.

One generic mechanism walks the dataclasses below, so every section gets the same checks:
unknown keys are rejected (typos surface at once), wrong types name the full key
(``channels.telegram.token: expected a string``), and ``${ENV_VAR}`` / ``${ENV_VAR:-default}``
is substituted in strings so secrets stay out of the file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import yaml

from bot.errors import ConfigError

T = TypeVar("T")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1_000_000


@dataclass(frozen=True)
class StoreConfig:
    url: str = "memory://"
    transcript_max: int = 200  # lines kept per conversation
    transcript_ttl_days: float = 30.0
    dedupe_ttl_seconds: int = 86_400
    conversation_lock_seconds: float = 30.0
    wait_replicas: int = 0  # replicas that must have a turn before it is answered (WAIT; 1 with Sentinel)


@dataclass(frozen=True)
class KnowledgeConfig:
    path: str = ""  # empty: the FAQ that ships with Kefu
    cache_dir: str = "~/.cache/kefu"
    out_of_scope_path: str = ""  # optional: example questions the bot must not answer
    build_threads: int = 0  # cores an index build may use; 0: half of them (1..8)


@dataclass(frozen=True)
class ThresholdConfig:
    """Decision thresholds on the calibrated FAQ confidence (0..1)."""

    answer: float = 0.4  # answer when the best entry reaches this (and leads by clarify_margin)
    clarify: float = 0.3  # offer choices when the top max_suggestions together reach this; below: none
    clarify_margin: float = 0.3  # offer a choice when the runner-up is this close
    max_suggestions: int = 3
    suggestion_min: float = 0.05  # a clarify lists only entries at least this likely (min. 2)
    related_min: float = 0.1  # next to an answer, runners-up this likely are offered as related questions
    off_topic: float = 0.5  # the off-topic class this likely (and no confident entry): "here is what I can do"
    complaint: float = 0.8  # the complaint kinds together this likely: hand off as a complaint


@dataclass(frozen=True)
class RasaConfig:
    """A Rasa server used as the NLU (``intents.backend: rasa``); Kefu's own layer is the fallback."""

    url: str = ""  # e.g. http://127.0.0.1:5005 (POST /model/parse)
    token: str = ""  # Rasa's --auth-token, sent as ?token=
    timeout_seconds: float = 2.0  # slower than this: Kefu's own layer answers instead
    min_confidence: float = 0.7  # a Rasa intent below this is left to Kefu's own layer
    intent_map: dict[str, str] = field(default_factory=dict)  # Rasa intent → entry id | greeting | human | ...


@dataclass(frozen=True)
class IntentsConfig:
    backend: str = "kefu"
    embeddings: bool = True
    builtin_examples: bool = True  # learn Kefu's off-topic and complaint examples next to the entries
    calibrate: bool = True  # fit the confidence to this knowledge base from held-out phrasings
    thresholds: ThresholdConfig = field(default_factory=ThresholdConfig)
    failures_before_handoff: int = 2
    rasa: RasaConfig = field(default_factory=RasaConfig)


@dataclass(frozen=True)
class ActionsConfig:
    """Business actions (rasa-sdk ``Action`` classes) named by knowledge entries, and ``kefu actions``."""

    module: str = ""  # Python module with the Action classes, run in-process (e.g. examples.order_status.actions)
    server_url: str = ""  # or a running rasa-sdk action server (e.g. http://127.0.0.1:5055)
    timeout_seconds: float = 5.0  # slower than this: a polite reply and a handoff
    port: int = 5055  # where `kefu actions` listens


@dataclass(frozen=True)
class HandoffConfig:
    expected_wait_minutes: int = 5  # said to the customer when a human takes over


@dataclass(frozen=True)
class WebChannelConfig:
    enabled: bool = True
    secret: str = ""  # HMAC key of visitor tokens; empty: one is made and kept in the store
    identity_secret: str = ""  # shared with your website: it signs data-customer (who the visitor is)
    allowed_origins: tuple[str, ...] = ()  # sites that may embed the widget / call the chat API
    unsigned_sessions: bool = True  # also accept client-chosen 'session' ids in the JSON API
    poll_seconds: float = 20.0  # longest a GET /api/chat/messages waits for something new
    typing_seconds: float = 6.0  # how long "the agent is typing" shows after the agent's last key
    max_attachment_bytes: int = 2_000_000  # a picture or file a visitor sends; above server.max_body_bytes is fine
    attachment_types: tuple[str, ...] = ("image/png", "image/jpeg", "image/gif", "image/webp",
                                         "application/pdf", "text/plain")


@dataclass(frozen=True)
class TelegramConfig:
    enabled: bool = False
    token: str = ""
    mode: str = "polling"
    webhook_url: str = ""
    webhook_secret: str = ""
    base_url: str = "https://api.telegram.org/bot"
    bot_username: str = ""
    base_file_url: str = ""  # empty: derived from base_url (…/bot → …/file/bot)
    poll_timeout_seconds: int = 10  # long-poll timeout of getUpdates in polling mode
    max_retries: int = 3  # resends of a message Telegram answered 429 (after its retry_after)
    network_retries: int = 2  # resends after a network error or a 5xx from Telegram


@dataclass(frozen=True)
class WeChatConfig:
    enabled: bool = False
    token: str = ""
    app_id: str = ""
    app_secret: str = ""
    encoding_aes_key: str = ""
    api_base_url: str = "https://api.weixin.qq.com/cgi-bin/"
    timestamp_window_seconds: int = 300
    passive_reply_seconds: float = 4.0


@dataclass(frozen=True)
class WeComConfig:
    enabled: bool = False
    corp_id: str = ""
    secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    open_kfid: str = ""
    api_base_url: str = "https://qyapi.weixin.qq.com/cgi-bin/"


@dataclass(frozen=True)
class ChannelsConfig:
    web: WebChannelConfig = field(default_factory=WebChannelConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    wechat: WeChatConfig = field(default_factory=WeChatConfig)
    wecom: WeComConfig = field(default_factory=WeComConfig)


@dataclass(frozen=True)
class AgentUserConfig:
    """A console login; ``password_hash`` comes from ``kefu agent add`` (scrypt, never plain text)."""

    name: str = ""
    password_hash: str = ""
    role: str = "agent"  # agent | admin
    display_name: str = ""  # the name customers see when this agent joins ("小李"); empty: the login name
    groups: tuple[str, ...] = ()  # skill groups (e.g. 售后, English) whose tickets they are given
    max_chats: int = 0  # concurrent chats; 0: agents.max_chats


@dataclass(frozen=True)
class CannedReplyConfig:
    title: str = ""
    text: str = ""


@dataclass(frozen=True)
class SkillGroupConfig:
    """A team that gets certain tickets: by the customer's language or the bot's best entry."""

    name: str = ""
    languages: tuple[str, ...] = ()  # e.g. [en]: English-speaking customers
    entries: tuple[str, ...] = ()  # entry id patterns of the bot's best guess, e.g. [refund-*, return-*]


@dataclass(frozen=True)
class ServiceHoursConfig:
    """When humans answer; an empty ``weekly`` means always staffed."""

    timezone: str = "Asia/Shanghai"
    weekly: dict[str, str] = field(default_factory=dict)  # mon..sun: "09:00-21:00" (missing day: closed)
    holidays: tuple[str, ...] = ()  # "2026-10-01": closed all day


@dataclass(frozen=True)
class AgentsConfig:
    """The human desk: queue, console logins, SLA timers and the satisfaction survey."""

    users: tuple[AgentUserConfig, ...] = ()
    session_hours: float = 12.0
    unclaimed_sla_minutes: float = 5.0  # a waiting ticket older than this is escalated
    sla_check_seconds: float = 15.0
    minutes_per_ticket: float = 4.0  # rough handling time, for the customer's wait estimate
    queue_update_seconds: float = 60.0  # at most one position update per customer this often
    survey_hours: float = 24.0  # a rating given later than this is not taken as a rating
    canned: tuple[CannedReplyConfig, ...] = ()
    auto_assign: str = "off"  # off | least_busy | round_robin: the desk hands waiting tickets to online agents
    max_chats: int = 5  # concurrent chats per agent (auto-assignment, claims, transfers); 0: no limit
    offline_grace_minutes: float = 3.0  # an agent gone this long (logout, dead browser): their chats re-queue
    groups: tuple[SkillGroupConfig, ...] = ()


@dataclass(frozen=True)
class SecurityConfig:
    """Abuse limits and personal data (see SECURITY.md)."""

    rate_limit_per_minute: int = 20  # messages per customer per minute the bot answers (0: no limit)
    mask_logs: bool = True  # phone and ID-card numbers masked in log lines
    mask_exports: bool = False  # ... and in transcripts exported from the agent console
    new_web_sessions_per_minute_per_address: int = 10  # new web chats one client address may open (0: off)
    new_web_sessions_per_minute: int = 300  # new web chats all addresses together may open (0: off)
    max_classified_chars: int = 300  # the model reads this much of a message (the agent sees all of it)


@dataclass(frozen=True)
class MetricsConfig:
    """``GET /metrics`` for Prometheus (docs/deploy.md)."""

    enabled: bool = True
    token: str = ""  # scrapes must send "Authorization: Bearer <token>"; empty: loopback clients only
    listen: str = ""  # "HOST:PORT": /metrics on its own listener (admin network) instead of the main port


@dataclass(frozen=True)
class LoggingConfig:
    format: str = "text"  # text | json (one object per line, for log collectors)


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)
    intents: IntentsConfig = field(default_factory=IntentsConfig)
    handoff: HandoffConfig = field(default_factory=HandoffConfig)
    channels: ChannelsConfig = field(default_factory=ChannelsConfig)
    actions: ActionsConfig = field(default_factory=ActionsConfig)
    agents: AgentsConfig = field(default_factory=AgentsConfig)
    service_hours: ServiceHoursConfig = field(default_factory=ServiceHoursConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    source: str = field(default="<defaults>", compare=False)

    def with_overrides(self, **sections: Any) -> Config:
        return dataclasses.replace(self, **sections)


def _substitute_env(value: str, key: str) -> str:
    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{key}: environment variable {name} is not set")

    return _ENV.sub(repl, value)


def _convert(value: Any, hint: Any, key: str) -> Any:
    origin = get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, options[0], key)
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type[Any], hint), value, key)
    if isinstance(value, str):
        value = _substitute_env(value, key)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "yes", "1", "on", "false", "no", "0", "off"}:
            return value.lower() in {"true", "yes", "1", "on"}
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int or hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            number = hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if number < 0:
            raise ConfigError(f"{key}: must not be negative, got {value!r}")
        return number
    if hint is str:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list")
        item = get_args(hint)[0]
        items = [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping")
        return {str(k): _convert(v, get_args(hint)[1], f"{key}.{k}") for k, v in value.items()}
    return value


def _build(cls: type[T], data: Any, prefix: str) -> T:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping of keys")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init and f.name != "source"}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"{where}{unknown[0]}: unknown key (known: {', '.join(sorted(names))})")
    kwargs = {name: _convert(value, hints[name], f"{prefix}.{name}" if prefix else name)
              for name, value in data.items()}
    return cls(**kwargs)


def parse_config(data: Any, source: str = "<config>") -> Config:
    config = _build(Config, data, "")
    if config.logging.format not in ("text", "json"):
        raise ConfigError(f"logging.format: expected text or json, got {config.logging.format!r}")
    return dataclasses.replace(config, source=source)


def load_config(path: str | Path | None = None) -> Config:
    """Load ``path``; without one, ``./config.yaml`` if present, else built-in defaults."""
    if path is None:
        candidate = Path("config.yaml")
        if not candidate.exists():
            return Config()
        path = candidate
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        from knowledge.schema import yaml_problem

        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(exc)}") from None
    try:
        return parse_config(data, str(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
