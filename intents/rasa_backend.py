"""A Rasa server as Kefu's NLU (``intents.backend: rasa``), with Kefu's own layer as the fallback.

Teams that already trained a Rasa model keep it: each message is sent to the Rasa server's
``POST /model/parse`` and the intent it finds is mapped to a Kefu decision:

* an intent named like a knowledge entry id (``track_order`` matches ``track-order`` too), or
  mapped to one in ``intents.rasa.intent_map``, answers that entry;
* ``greeting`` / ``thanks`` / ``goodbye`` / ``bot_identity`` targets become smalltalk;
* ``human`` and ``complaint`` targets hand off at once;
* ``kefu`` (or any intent nothing maps) leaves the message to Kefu's own layer.

Kefu's service rules stay in force whatever the model says: the classifier
(:mod:`intents.classify`) applies them before asking any reader, so a complaint or a demand for
a human detected by Kefu's escalation rules hands off, and "2" after a clarify picks option 2,
without Rasa being asked.  When Rasa is slow, down or answers garbage, the message is decided by
Kefu's own reader and the failure is logged; a message is never dropped.

This module needs only httpx, never rasa-sdk.  The parse is part of the classify step, which the
engine runs in its worker thread, so it uses a synchronous, injected :class:`httpx.Client`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from bot.config import RasaConfig, ThresholdConfig
from bot.errors import ConfigError
from bot.types import Action, Candidate, Conversation, Decision, Intent, Reason
from intents.base import FinalReader
from intents.classify import Classifier
from knowledge.schema import KnowledgeBase

log = logging.getLogger(__name__)

SMALLTALK = frozenset({"greeting", "thanks", "goodbye", "bot_identity"})
HANDOFF_REASONS = {"human": Reason.HUMAN_REQUEST, "complaint": Reason.COMPLAINT}
KEFU = "kefu"  # map an intent here to leave it to Kefu's own layer

# The intents of Rasa's starter project (``rasa init``) and common names for the rest.
DEFAULT_INTENT_MAP: dict[str, str] = {
    "greet": "greeting",
    "goodbye": "goodbye",
    "thank": "thanks",
    "thanks": "thanks",
    "thankyou": "thanks",
    "bot_challenge": "bot_identity",
    "human": "human",
    "human_handoff": "human",
    "request_human": "human",
    "talk_to_human": "human",
    "complain": "complaint",
    "complaint": "complaint",
    "nlu_fallback": KEFU,
    "out_of_scope": KEFU,
}


class RasaUnavailable(Exception):
    """The Rasa server did not give a usable parse in time (down, slow, 5xx, bad JSON)."""


def check_target(target: str, kb: KnowledgeBase) -> None:
    """Reject an ``intent_map`` value that means nothing, when the layer is built (not per message)."""
    if target in SMALLTALK or target in HANDOFF_REASONS or target == KEFU or kb.get(target) is not None:
        return
    known = ", ".join(sorted({*SMALLTALK, *HANDOFF_REASONS, KEFU}))
    raise ConfigError(f"intents.rasa.intent_map: {target!r} is neither a knowledge entry id nor one of {known}")


class RasaParser:
    """``POST /model/parse`` on a Rasa server; every failure becomes :class:`RasaUnavailable`."""

    def __init__(self, config: RasaConfig, client: httpx.Client) -> None:
        if not config.url:
            raise ConfigError("intents.rasa.url is required when intents.backend is rasa "
                              "(e.g. http://127.0.0.1:5005)")
        self.url = config.url.rstrip("/") + "/model/parse"
        self.params = {"token": config.token} if config.token else {}
        self.timeout = config.timeout_seconds
        self.client = client

    def parse(self, text: str, sender: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
        if sender:
            body["message_id"] = sender
        try:
            response = self.client.post(self.url, json=body, params=self.params, timeout=self.timeout)
            response.raise_for_status()
            data = response.json()
        except httpx.TimeoutException as exc:
            raise RasaUnavailable(f"no answer within {self.timeout:g}s ({type(exc).__name__})") from exc
        except httpx.HTTPStatusError as exc:
            raise RasaUnavailable(f"HTTP {exc.response.status_code}") from exc
        except httpx.HTTPError as exc:
            raise RasaUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except ValueError as exc:
            raise RasaUnavailable("response is not JSON") from exc
        if not isinstance(data, dict) or not isinstance(data.get("intent"), dict):
            raise RasaUnavailable("response has no intent")
        return data


class RasaReader:
    """Read a message with a Rasa model; None (the next reader decides) when it is not confident."""

    def __init__(self, parser: RasaParser, kb: KnowledgeBase, config: RasaConfig, thresholds: ThresholdConfig) -> None:
        self.parser = parser
        self.kb = kb
        self.min_confidence = config.min_confidence
        self.margin = thresholds.clarify_margin
        self.intent_map = {**DEFAULT_INTENT_MAP, **config.intent_map}
        for target in config.intent_map.values():
            check_target(target, kb)
        self.fallbacks = 0  # messages Kefu decided because Rasa was unavailable (for logs and tests)

    def is_quick(self, text: str) -> bool:
        return False  # asks the Rasa server over HTTP

    def understand(self, text: str, language: str, conversation: Conversation) -> Decision | None:
        try:
            parsed = self.parser.parse(text, conversation.id)
        except RasaUnavailable as exc:
            self.fallbacks += 1
            log.warning("Rasa NLU unavailable (%s); Kefu's own intent layer decides %s", exc, conversation.id)
            return None
        return self._from_parse(parsed, language)

    def target(self, intent: str) -> str:
        """What a Rasa intent means to Kefu: an entry id, a smalltalk kind, human/complaint, or kefu."""
        mapped = self.intent_map.get(intent)
        if mapped is not None:
            return mapped
        for candidate in (intent, intent.replace("_", "-"), intent.replace("-", "_")):
            if self.kb.get(candidate) is not None:
                return candidate
        return KEFU

    def _from_parse(self, parsed: Mapping[str, Any], language: str) -> Decision | None:
        intent = parsed["intent"]
        name, confidence = str(intent.get("name") or ""), _number(intent.get("confidence"))
        if not name or confidence < self.min_confidence:
            return None
        target = self.target(name)
        if target == KEFU:
            return None
        if target in SMALLTALK:
            return Decision(Action.SMALLTALK, language, Intent(target), confidence, reason=Reason.RASA)
        if target in HANDOFF_REASONS:
            return Decision(Action.HANDOFF, language, Intent(target), confidence, reason=HANDOFF_REASONS[target],
                            detail=f"Rasa intent {name} ({confidence:.2f})")
        candidates = self._candidates(parsed, name, confidence)
        runner_up = candidates[1].score if len(candidates) > 1 else 0.0
        if confidence - runner_up < self.margin:
            return None  # two entries nearly tied: Kefu's layer knows how to ask which one
        return Decision(Action.ANSWER, language, Intent.FAQ, confidence, entry_id=target, reason=Reason.RASA,
                        candidates=candidates)

    def _candidates(self, parsed: Mapping[str, Any], name: str, confidence: float) -> tuple[Candidate, ...]:
        """The entries Rasa ranked, best first, so the agent sees them on a later handoff."""
        ranking = parsed.get("intent_ranking")
        pairs = [(name, confidence)]
        if isinstance(ranking, list):
            pairs += [(str(r.get("name")), _number(r.get("confidence"))) for r in ranking if isinstance(r, dict)]
        result: dict[str, Candidate] = {}
        for intent, score in pairs:
            entry = self.kb.get(self.target(intent))
            if entry is not None and entry.id not in result:
                result[entry.id] = Candidate(entry.id, score, entry.title)
        return tuple(result.values())[:3]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def build_rasa_layer(fallback: FinalReader, kb: KnowledgeBase, config: RasaConfig, thresholds: ThresholdConfig,
                     client: httpx.Client | None = None) -> Classifier:
    """Kefu's rules, then Rasa, then ``fallback`` (Kefu's own reader); ``client`` is injected by
    tests, else made here."""
    return Classifier(fallback, (build_rasa_reader(kb, config, thresholds, client),))


def build_rasa_reader(kb: KnowledgeBase, config: RasaConfig, thresholds: ThresholdConfig,
                      client: httpx.Client | None = None) -> RasaReader:
    parser = RasaParser(config, client or httpx.Client(timeout=config.timeout_seconds))
    return RasaReader(parser, kb, config, thresholds)
