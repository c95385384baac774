"""Configuration: ``config.yaml`` → typed, validated dataclasses; every rule about it lives here.

Two kinds of checks, both in this module so a reader finds every rule in one place:

* **Shape**, when a file is parsed: pydantic validates the mapping against the dataclasses below
  (unknown keys are rejected so typos surface at once; wrong types name the full key, as in
  ``channels.telegram.token: expected a string``; ``${ENV_VAR}`` / ``${ENV_VAR:-default}`` is
  substituted in strings so secrets stay out of the file).  The first problem, in the file's
  order, is raised as one :class:`ConfigError` line.
* **Meaning**, each section's ``problems()``: what only makes sense together (a token when a
  channel is enabled, a 43-character key, hours that parse) — pure, no I/O.  ``kefu check``
  (:mod:`bot.preflight`) reports every section's problems at once next to its I/O checks; the
  component that needs a section calls ``check()`` and stops at the first.

Code builds the dataclasses directly too (tests, ``--port``); that skips the shape checks
exactly as before, so only YAML pays for them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BeforeValidator, GetCoreSchemaHandler, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError, core_schema

from bot.errors import ConfigError

T = TypeVar("T")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})
STORE_SCHEMES = ("memory://", "redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")
ROLES = ("agent", "admin")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_TELEGRAM_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what Telegram accepts as secret_token


# --- shape: how YAML values become field values -----------------------------------------------------------
# Kefu's own rules rather than pydantic's lax coercions, so a file means what it always meant:
# "yes"/"off" are booleans but 1 is not, "9000" is a port, numbers are never negative.

def _problem(message: str, **context: Any) -> PydanticCustomError:
    """A validation error whose text is Kefu's message (the key is added by :func:`_one_line`)."""
    return PydanticCustomError("kefu_config", "{problem}", {"problem": message, **context})


def _env(value: Any) -> Any:
    """``${NAME}`` / ``${NAME:-default}`` in a string replaced from the environment."""
    if not isinstance(value, str):
        return value

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise _problem(f"environment variable {name} is not set")

    return _ENV.sub(repl, value)


def _flag(value: Any) -> bool:
    value = _env(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise _problem(f"expected true or false, got {value!r}")


def _number(kind: type[int] | type[float]) -> BeforeValidator:
    def convert(value: Any) -> int | float:
        value = _env(value)
        if isinstance(value, bool):
            raise _problem(f"expected a number, got {value!r}")
        try:
            number = kind(value)
        except (TypeError, ValueError, OverflowError):
            raise _problem(f"expected a number, got {value!r}") from None
        if number < 0:
            raise _problem(f"must not be negative, got {value!r}")
        return number

    return BeforeValidator(convert)


def _text(value: Any) -> str:
    value = _env(value)
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise _problem(f"expected a string, got {value!r}")


def _list(value: Any) -> Any:
    if not isinstance(_env(value), list):
        raise _problem("expected a list")
    return value


def _mapping(value: Any) -> Any:
    if not isinstance(_env(value), dict):
        raise _problem("expected a mapping")
    return {str(k): v for k, v in value.items()}


def _log_format(value: str) -> str:
    if value not in ("text", "json"):  # reported only when nothing else is wrong, as it always was
        raise _problem(f"expected text or json, got {value!r}", late=True)
    return value


Flag = Annotated[bool, BeforeValidator(_flag)]
Text = Annotated[str, BeforeValidator(_text)]
Whole = Annotated[int, _number(int)]  # a whole number, 0 or more (a float is truncated, as int() does)
Real = Annotated[float, _number(float)]  # a number, 0 or more
Texts = Annotated[tuple[Text, ...], BeforeValidator(_list)]
TextMap = Annotated[dict[str, Text], BeforeValidator(_mapping)]
Items = Annotated[tuple[T, ...], BeforeValidator(_list)]
LogFormat = Annotated[str, BeforeValidator(_text), AfterValidator(_log_format)]


class Section:
    """A config section: a mapping whose keys are exactly its fields (YAML ``null`` is all
    defaults), and the home of the section's meaning checks."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        known = {f.name for f in dataclasses.fields(cls) if f.init and f.name != "source"}  # type: ignore[arg-type]

        def keys_known(data: Any) -> Any:
            if data is None:
                return {}
            if not isinstance(data, dict):
                raise _problem("expected a mapping of keys")
            unknown = sorted(set(data) - known, key=str)
            if unknown:
                raise _problem(f"unknown key (known: {', '.join(sorted(known))})", key=str(unknown[0]))
            return data

        return core_schema.no_info_before_validator_function(keys_known, handler(source))

    def problems(self) -> list[str]:
        """What is wrong with this section's values taken together, one line each (no I/O)."""
        return []

    def check(self) -> None:
        """Raise the first of :meth:`problems` (for the component that is about to use it)."""
        for problem in self.problems():
            raise ConfigError(problem)


def _url_problem(url: str, key: str) -> str | None:
    if url and not url.startswith(("http://", "https://")):
        return f"{key}: expected an http:// or https:// URL, got {url!r}"
    return None


def redact(url: str) -> str:
    """``url`` with any password replaced, for messages and logs (redis://:***@host:6379/0)."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


@dataclass(frozen=True)
class ServerConfig(Section):
    host: Text = "127.0.0.1"
    port: Whole = 8080
    max_body_bytes: Whole = 1_000_000


@dataclass(frozen=True)
class StoreConfig(Section):
    url: Text = "memory://"
    transcript_max: Whole = 200  # lines kept per conversation
    transcript_ttl_days: Real = 30.0
    dedupe_ttl_seconds: Whole = 86_400
    conversation_lock_seconds: Real = 30.0
    wait_replicas: Whole = 0  # replicas that must have a turn before it is answered (WAIT; 1 with Sentinel)

    def problems(self) -> list[str]:
        if not self.url.startswith(STORE_SCHEMES):
            return [f"store.url: expected memory://, redis://host:port/db, rediss:// or unix://, "
                    f"got {redact(self.url)!r}"]
        if self.wait_replicas and self.url.startswith("redis+cluster://"):
            # WAIT names no key: a cluster client sends it to any node, not to the turn's
            return ["store.wait_replicas: not supported with redis+cluster:// (set it to 0)"]
        return []


@dataclass(frozen=True)
class KnowledgeConfig(Section):
    path: Text = ""  # empty: the FAQ that ships with Kefu
    cache_dir: Text = "~/.cache/kefu"
    out_of_scope_path: Text = ""  # optional: example questions the bot must not answer
    build_threads: Whole = 0  # cores an index build may use; 0: half of them (1..8)


@dataclass(frozen=True)
class ThresholdConfig(Section):
    """Decision thresholds on the calibrated FAQ confidence (0..1)."""

    answer: Real = 0.35  # answer when the best entry reaches this (and leads by clarify_margin)
    clarify: Real = 0.15  # offer choices when the top max_suggestions together reach this; below: none
    clarify_margin: Real = 0.2  # offer a choice when the runner-up is this close
    max_suggestions: Whole = 3
    suggestion_min: Real = 0.05  # a clarify lists only entries at least this likely (min. 2)
    related_min: Real = 0.1  # next to an answer, runners-up this likely are offered as related questions
    off_topic: Real = 0.5  # the off-topic class this likely (and no confident entry): "here is what I can do"
    complaint: Real = 0.8  # the complaint kinds together this likely: hand off as a complaint
    complaint_unsure: Real = 0.5  # ... this likely and no confident answer: hand off as a complaint too


@dataclass(frozen=True)
class RasaConfig(Section):
    """A Rasa server used as the NLU (``intents.backend: rasa``); Kefu's own layer is the fallback."""

    url: Text = ""  # e.g. http://127.0.0.1:5005 (POST /model/parse)
    token: Text = ""  # Rasa's --auth-token, sent as ?token=
    timeout_seconds: Real = 2.0  # slower than this: Kefu's own layer answers instead
    min_confidence: Real = 0.7  # a Rasa intent below this is left to Kefu's own layer
    intent_map: TextMap = field(default_factory=dict)  # Rasa intent → entry id | greeting | human | ...


@dataclass(frozen=True)
class IntentsConfig(Section):
    backend: Text = "kefu"
    embeddings: Flag = True
    builtin_examples: Flag = True  # learn Kefu's off-topic and complaint examples next to the entries
    calibrate: Flag = True  # fit the confidence to this knowledge base from held-out phrasings
    thresholds: ThresholdConfig = field(default_factory=ThresholdConfig)
    failures_before_handoff: Whole = 2
    rasa: RasaConfig = field(default_factory=RasaConfig)

    def problems(self) -> list[str]:
        problems: list[str] = []
        if self.backend not in ("kefu", "rasa"):
            problems.append(f"intents.backend: expected kefu or rasa, got {self.backend!r}")
        elif self.backend == "rasa":
            if not self.rasa.url:
                problems.append("intents.rasa.url: required when intents.backend is rasa "
                                "(e.g. http://127.0.0.1:5005)")
            elif (problem := _url_problem(self.rasa.url, "intents.rasa.url")) is not None:
                problems.append(problem)
        for name in ("answer", "clarify", "clarify_margin", "suggestion_min"):
            value = getattr(self.thresholds, name)
            if value > 1:
                problems.append(f"intents.thresholds.{name}: a confidence from 0 to 1, got {value:g}")
        return problems


@dataclass(frozen=True)
class ActionsConfig(Section):
    """Business actions (rasa-sdk ``Action`` classes) named by knowledge entries, and ``kefu actions``."""

    module: Text = ""  # Python module with the Action classes, run in-process (e.g. examples.order_status.actions)
    server_url: Text = ""  # or a running rasa-sdk action server (e.g. http://127.0.0.1:5055)
    timeout_seconds: Real = 5.0  # slower than this: a polite reply and a handoff
    port: Whole = 5055  # where `kefu actions` listens

    def problems(self) -> list[str]:
        problem = _url_problem(self.server_url, "actions.server_url")
        return [] if problem is None else [problem]


@dataclass(frozen=True)
class HandoffConfig(Section):
    expected_wait_minutes: Whole = 5  # said to the customer when a human takes over


@dataclass(frozen=True)
class WebChannelConfig(Section):
    enabled: Flag = True
    secret: Text = ""  # HMAC key of visitor tokens; empty: one is made and kept in the store
    identity_secret: Text = ""  # shared with your website: it signs data-customer (who the visitor is)
    allowed_origins: Texts = ()  # sites that may embed the widget / call the chat API
    unsigned_sessions: Flag = True  # also accept client-chosen 'session' ids in the JSON API
    poll_seconds: Real = 20.0  # longest a GET /api/chat/messages waits for something new
    typing_seconds: Real = 6.0  # how long "the agent is typing" shows after the agent's last key
    max_attachment_bytes: Whole = 2_000_000  # a picture or file a visitor sends; above server.max_body_bytes is fine
    attachment_types: Texts = ("image/png", "image/jpeg", "image/gif", "image/webp",
                                         "application/pdf", "text/plain")


@dataclass(frozen=True)
class TelegramConfig(Section):
    enabled: Flag = False
    token: Text = ""
    mode: Text = "polling"
    webhook_url: Text = ""
    webhook_secret: Text = ""
    base_url: Text = "https://api.telegram.org/bot"
    bot_username: Text = ""
    base_file_url: Text = ""  # empty: derived from base_url (…/bot → …/file/bot)
    poll_timeout_seconds: Whole = 10  # long-poll timeout of getUpdates in polling mode
    max_retries: Whole = 3  # resends of a message Telegram answered 429 (after its retry_after)
    network_retries: Whole = 2  # resends after a network error or a 5xx from Telegram

    def problems(self) -> list[str]:
        """At most one problem (each rule assumes the ones before it hold); none when disabled."""
        return list(self._rules()) if self.enabled else []

    def _rules(self) -> Iterator[str]:
        if not self.token.strip():
            yield ("channels.telegram.token: required when channels.telegram.enabled is true "
                   "(the token @BotFather gave you, e.g. ${TELEGRAM_BOT_TOKEN})")
        elif self.mode not in ("polling", "webhook"):
            yield f"channels.telegram.mode: must be polling or webhook, got {self.mode!r}"
        elif not self.base_url.startswith(("https://", "http://")):
            yield f"channels.telegram.base_url: must be an http(s) URL, got {self.base_url!r}"
        elif self.base_file_url and not self.base_file_url.startswith(("https://", "http://")):
            yield f"channels.telegram.base_file_url: must be an http(s) URL, got {self.base_file_url!r}"
        elif self.mode == "webhook":
            if not self.webhook_url:
                yield ("channels.telegram.webhook_url: required when channels.telegram.mode is webhook "
                       "(the public https URL of /webhooks/telegram)")
            elif not self.webhook_url.startswith("https://"):
                yield f"channels.telegram.webhook_url: Telegram only calls https:// URLs, got {self.webhook_url!r}"
            elif not self.webhook_secret:
                yield ("channels.telegram.webhook_secret: required when channels.telegram.mode is webhook "
                       "(1-256 characters A-Z, a-z, 0-9, _ and -)")
            elif not _TELEGRAM_SECRET.match(self.webhook_secret):
                yield ("channels.telegram.webhook_secret: only 1-256 characters A-Z, a-z, 0-9, _ and - "
                       "are allowed by Telegram")


@dataclass(frozen=True)
class WeChatConfig(Section):
    enabled: Flag = False
    token: Text = ""
    app_id: Text = ""
    app_secret: Text = ""
    encoding_aes_key: Text = ""
    api_base_url: Text = "https://api.weixin.qq.com/cgi-bin/"
    timestamp_window_seconds: Whole = 300
    passive_reply_seconds: Real = 4.0

    def problems(self) -> list[str]:
        """Checked whenever the channel is built, enabled or not (it is only built when enabled)."""
        problems: list[str] = []
        if not self.token:
            problems.append("channels.wechat.token: required when channels.wechat.enabled is true "
                            "(the Token you chose in 服务器配置, e.g. ${WECHAT_TOKEN})")
        if self.encoding_aes_key and len(self.encoding_aes_key) != 43:
            problems.append("channels.wechat.encoding_aes_key: must be the 43-character EncodingAESKey "
                            f"from 服务器配置 (got {len(self.encoding_aes_key)} characters)")
        if bool(self.app_id) != bool(self.app_secret):
            missing = "app_secret" if self.app_id else "app_id"
            problems.append(f"channels.wechat.{missing}: required together with the other of app_id/app_secret "
                            "(基本配置; used to send customer-service messages)")
        if (problem := _url_problem(self.api_base_url, "channels.wechat.api_base_url")) is not None:
            problems.append(problem)
        return problems


@dataclass(frozen=True)
class WeComConfig(Section):
    enabled: Flag = False
    corp_id: Text = ""
    secret: Text = ""
    token: Text = ""
    encoding_aes_key: Text = ""
    open_kfid: Text = ""
    api_base_url: Text = "https://qyapi.weixin.qq.com/cgi-bin/"

    def problems(self) -> list[str]:
        """Checked whenever the channel is built, enabled or not (it is only built when enabled)."""
        problems = [f"channels.wecom.{key}: required when channels.wecom.enabled is true (see docs/wechat.md)"
                    for key in ("corp_id", "secret", "token", "encoding_aes_key") if not getattr(self, key)]
        if self.encoding_aes_key and len(self.encoding_aes_key) != 43:
            problems.append("channels.wecom.encoding_aes_key: must be the 43-character EncodingAESKey "
                            f"(got {len(self.encoding_aes_key)} characters)")
        if (problem := _url_problem(self.api_base_url, "channels.wecom.api_base_url")) is not None:
            problems.append(problem)
        return problems


@dataclass(frozen=True)
class ChannelsConfig(Section):
    web: WebChannelConfig = field(default_factory=WebChannelConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    wechat: WeChatConfig = field(default_factory=WeChatConfig)
    wecom: WeComConfig = field(default_factory=WeComConfig)

    def problems(self) -> list[str]:
        """The enabled channels' problems (web has none that can be checked without I/O)."""
        enabled = [channel for channel in (self.telegram, self.wechat, self.wecom) if channel.enabled]
        return [problem for channel in enabled for problem in channel.problems()]


@dataclass(frozen=True)
class AgentUserConfig(Section):
    """A console login; ``password_hash`` comes from ``kefu agent add`` (scrypt, never plain text)."""

    name: Text = ""
    password_hash: Text = ""
    role: Text = "agent"  # agent | admin
    display_name: Text = ""  # the name customers see when this agent joins ("小李"); empty: the login name
    groups: Texts = ()  # skill groups (e.g. 售后, English) whose tickets they are given
    max_chats: Whole = 0  # concurrent chats; 0: agents.max_chats


@dataclass(frozen=True)
class CannedReplyConfig(Section):
    title: Text = ""
    text: Text = ""


@dataclass(frozen=True)
class SkillGroupConfig(Section):
    """A team that gets certain tickets: by the customer's language or the bot's best entry."""

    name: Text = ""
    languages: Texts = ()  # e.g. [en]: English-speaking customers
    entries: Texts = ()  # entry id patterns of the bot's best guess, e.g. [refund-*, return-*]


@dataclass(frozen=True)
class ServiceHoursConfig(Section):
    """When humans answer; an empty ``weekly`` means always staffed."""

    timezone: Text = "Asia/Shanghai"
    weekly: TextMap = field(default_factory=dict)  # mon..sun: "09:00-21:00" (missing day: closed)
    holidays: Texts = ()  # "2026-10-01": closed all day

    def schedule(self) -> Schedule:
        """The hours parsed; :class:`ConfigError` naming the key at the first that does not."""
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"service_hours.timezone: unknown time zone {self.timezone!r}") from None
        spans: dict[int, tuple[dt.time, dt.time]] = {}
        for day, span in self.weekly.items():
            if day.lower() not in DAYS:
                raise ConfigError(f"service_hours.weekly.{day}: expected one of {', '.join(DAYS)}")
            match = _SPAN.match(span)
            if match is None:
                raise ConfigError(f"service_hours.weekly.{day}: expected HH:MM-HH:MM, got {span!r}")
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            try:
                start = dt.time(h1, m1)
                end = dt.time(23, 59, 59) if (h2, m2) == (24, 0) else dt.time(h2, m2)
            except ValueError:
                raise ConfigError(f"service_hours.weekly.{day}: not a time of day: {span!r}") from None
            if end <= start:
                raise ConfigError(f"service_hours.weekly.{day}: the shift must end after it starts: {span!r}")
            spans[DAYS.index(day.lower())] = (start, end)
        holidays: set[dt.date] = set()
        for i, text in enumerate(self.holidays):
            try:
                holidays.add(dt.date.fromisoformat(text))
            except ValueError:
                raise ConfigError(f"service_hours.holidays[{i}]: expected YYYY-MM-DD, got {text!r}") from None
        return Schedule(zone, spans, frozenset(holidays))

    def problems(self) -> list[str]:
        """The first problem only (parsing stops there)."""
        try:
            self.schedule()
        except ConfigError as exc:
            return [str(exc)]
        return []


@dataclass(frozen=True)
class Schedule:
    """Service hours ready to compute with: weekday (0 = Monday) → local start and end."""

    zone: ZoneInfo
    spans: dict[int, tuple[dt.time, dt.time]]
    holidays: frozenset[dt.date]


@dataclass(frozen=True)
class AgentsConfig(Section):
    """The human desk: queue, console logins, SLA timers and the satisfaction survey."""

    users: Items[AgentUserConfig] = ()
    session_hours: Real = 12.0
    unclaimed_sla_minutes: Real = 5.0  # a waiting ticket older than this is escalated
    sla_check_seconds: Real = 15.0
    minutes_per_ticket: Real = 4.0  # rough handling time, for the customer's wait estimate
    queue_update_seconds: Real = 60.0  # at most one position update per customer this often
    survey_hours: Real = 24.0  # a rating given later than this is not taken as a rating
    canned: Items[CannedReplyConfig] = ()
    auto_assign: Text = "off"  # off | least_busy | round_robin: the desk hands waiting tickets to online agents
    max_chats: Whole = 5  # concurrent chats per agent (auto-assignment, claims, transfers); 0: no limit
    offline_grace_minutes: Real = 3.0  # an agent gone this long (logout, dead browser): their chats re-queue
    groups: Items[SkillGroupConfig] = ()

    def problems(self) -> list[str]:
        problems: list[str] = []
        for i, user in enumerate(self.users):
            if not user.name:
                problems.append(f"agents.users[{i}].name: required")
            if user.role not in ROLES:
                problems.append(f"agents.users[{i}].role: expected agent or admin, got {user.role!r}")
            if not user.password_hash:
                problems.append(f"agents.users[{i}].password_hash: required; make one with "
                                f"kefu agent add {user.name or 'NAME'} (it prints the entry)")
            elif not user.password_hash.startswith("scrypt$"):
                problems.append(f"agents.users[{i}].password_hash: not a hash made by kefu agent add "
                                f"(those start with scrypt$); make one with kefu agent add {user.name or 'NAME'}")
            if user.max_chats < 0:
                problems.append(f"agents.users[{i}].max_chats: must be 0 (the default) or more")
        return problems


@dataclass(frozen=True)
class SecurityConfig(Section):
    """Abuse limits and personal data (see SECURITY.md)."""

    rate_limit_per_minute: Whole = 20  # messages per customer per minute the bot answers (0: no limit)
    mask_logs: Flag = True  # phone and ID-card numbers masked in log lines
    mask_exports: Flag = False  # ... and in transcripts exported from the agent console
    new_web_sessions_per_minute_per_address: Whole = 10  # new web chats one client address may open (0: off)
    new_web_sessions_per_minute: Whole = 300  # new web chats all addresses together may open (0: off)
    max_classified_chars: Whole = 300  # the model reads this much of a message (the agent sees all of it)


@dataclass(frozen=True)
class MetricsConfig(Section):
    """``GET /metrics`` for Prometheus (docs/deploy.md)."""

    enabled: Flag = True
    token: Text = ""  # scrapes must send "Authorization: Bearer <token>"; empty: loopback clients only
    listen: Text = ""  # "HOST:PORT": /metrics on its own listener (admin network) instead of the main port

    def address(self) -> tuple[str, int]:
        """``listen`` as (host, port); :class:`ConfigError` when it is not HOST:PORT."""
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"metrics.listen: expected HOST:PORT (e.g. 127.0.0.1:9464), got {self.listen!r}")
        return host.strip("[]"), int(port)

    def problems(self) -> list[str]:
        """``listen`` must be HOST:PORT (its own port is bound when the server starts)."""
        if not self.enabled or not self.listen:
            return []
        try:
            self.address()
        except ConfigError as exc:
            return [str(exc)]
        return []


@dataclass(frozen=True)
class LoggingConfig(Section):
    format: LogFormat = "text"  # text | json (one object per line, for log collectors)


@dataclass(frozen=True)
class Config(Section):
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

    def problems(self) -> list[str]:
        """Every section's problems, in key order (``kefu check`` adds its I/O checks in between)."""
        sections: tuple[Section, ...] = (self.store, self.channels, self.intents, self.actions, self.service_hours,
                                         self.agents, self.metrics)
        return [problem for section in sections for problem in section.problems()]


# --- parsing ---------------------------------------------------------------------------------------------

@functools.cache
def _adapter() -> TypeAdapter[Config]:
    return TypeAdapter(Config)


def _key(loc: Sequence[int | str]) -> str:
    """pydantic's error location as the key an operator edits: ``agents.users[0].name``."""
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    return key


def _place(data: Any, loc: Sequence[int | str]) -> tuple[int, ...]:
    """Where ``loc`` is in the file (key order): the first problem reported is the first one
    written, whatever order the dataclass fields are in."""
    place: list[int] = []
    for part in loc:
        if isinstance(data, dict):
            names = [str(name) for name in data]
            index = names.index(str(part)) if str(part) in names else len(names)
            place.append(index)
            data = data.get(part, data.get(str(part))) if index < len(names) else None
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            place.append(part)
            data = data[part]
        else:
            place.append(0)
    return tuple(place)


def _one_line(error: ValidationError, data: Any) -> ConfigError:
    """The first of pydantic's errors as Kefu's one line, naming the key to fix."""
    details = error.errors()
    first = min(details, key=lambda d: (bool((d.get("ctx") or {}).get("late")), _place(data, d["loc"])))
    context = first.get("ctx") or {}
    loc = [*first["loc"], context["key"]] if "problem" in context and "key" in context else list(first["loc"])
    return ConfigError(f"{_key(loc) or 'config'}: {context.get('problem', first['msg'])}")


def parse_config(data: Any, source: str = "<config>") -> Config:
    """``data`` (a parsed YAML document) as a :class:`Config`; :class:`ConfigError` names the
    first key that is unknown or of the wrong type."""
    try:
        config = _adapter().validate_python(data)
    except ValidationError as exc:
        raise _one_line(exc, data) from None
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
