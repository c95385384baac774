"""The turn pipeline of a running Kefu and its live knowledge: loaded at start, reloaded on edits.

The pipeline's parts (store, desk, engine) are built by the composition root, :mod:`bot.app`,
so tests inject loopback servers and the HTTP server, the CLI and the eval all run the very
same pipeline; this module builds the intent layer from a knowledge base and keeps it current.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import redis.asyncio as aioredis

from bot import metrics
from bot.config import Config, redact
from bot.desk import AgentDesk
from bot.engine import Engine
from bot.errors import ConfigError, StoreUnavailable
from bot.migrations import check_on_start
from bot.storage.client import REDIS_ERRORS
from bot.storage.conversations import Store
from bot.workers import settle_heap
from handlers.actions.act import BusinessActions
from intents.base import IntentLayer, Reader
from intents.classify import Classifier
from intents.faq import FaqMatcher
from intents.layer import KefuReader
from knowledge.builtin import builtin_examples
from knowledge.embeddings import set_build_threads
from knowledge.reload import reindex
from knowledge.repository import KnowledgeRepository
from knowledge.schema import KnowledgeBase, load_kb
from knowledge.search import Retriever, build_retriever
from knowledge.service import KnowledgeService

log = logging.getLogger(__name__)


def default_kb_path() -> Path:
    return Path(str(resources.files("knowledge").joinpath("default-faq.yaml")))


def read_lines(path: str) -> list[str]:
    """Non-empty, non-comment lines of a text file (out-of-scope examples)."""
    text = Path(path).expanduser().read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@dataclass(frozen=True)
class LiveKnowledge:
    """A knowledge base together with the intent layer built on it; swapped as a whole."""

    kb: KnowledgeBase
    layer: IntentLayer
    version: int
    retriever: Retriever | None = None  # kept so a one-entry edit updates the index incrementally


def build_intent_layer(kb: KnowledgeBase, config: Config, progress: bool = False) -> IntentLayer:
    return build_live_layer(kb, config, progress)[0]


def build_live_layer(kb: KnowledgeBase, config: Config, progress: bool = False) -> tuple[IntentLayer, Retriever]:
    """The intent layer over ``kb`` and the retriever under it (for incremental updates)."""
    retriever = build_retriever_for(kb, config, progress)
    return layer_on(retriever, kb, config), retriever


def build_retriever_for(kb: KnowledgeBase, config: Config, progress: bool = False) -> Retriever:
    """The retriever over ``kb`` as the config asks (embeddings, out-of-scope lines, examples)."""
    out_of_scope = read_lines(config.knowledge.out_of_scope_path) if config.knowledge.out_of_scope_path else []
    set_build_threads(config.knowledge.build_threads)
    return build_retriever(
        kb,
        cache_dir=Path(config.knowledge.cache_dir).expanduser(),
        embeddings=config.intents.embeddings,
        out_of_scope=out_of_scope,
        examples=builtin_examples() if config.intents.builtin_examples else None,
        calibrate=config.intents.calibrate,
        progress=progress,
    )


def layer_on(retriever: Retriever, kb: KnowledgeBase, config: Config) -> IntentLayer:
    """Wrap an already built retriever into the full intent layer (cheap)."""
    kefu = KefuReader(FaqMatcher(retriever, config.intents.thresholds), config.intents)
    return Classifier(kefu, readers_before(kefu, kb, config))


def readers_before(kefu: KefuReader, kb: KnowledgeBase, config: Config) -> tuple[Reader, ...]:
    """The external NLU asked before Kefu's own reader (a Rasa server), if configured."""
    backend = config.intents.backend
    if backend == "rasa":
        from intents.rasa_backend import build_rasa_reader

        return (build_rasa_reader(kb, config.intents.rasa, config.intents.thresholds),)
    if backend != "kefu":
        raise ConfigError(f"intents.backend: expected kefu or rasa, got {backend!r}")
    return ()


def build_actions(config: Config) -> BusinessActions:
    """The act step's runner of business actions (in-process, remote, or none configured)."""
    from handlers.actions.runner import build_runner

    return BusinessActions(build_runner(config.actions), config.intents.failures_before_handoff)


class KnowledgeSlot:
    """The live knowledge: empty until the runtime loads it, then swapped whole on each reload.
    The engine and the desk read it through :meth:`kb` and :meth:`layer`, so a reload reaches
    their next call without rebuilding them."""

    def __init__(self, live: LiveKnowledge | None = None) -> None:
        self.live = live

    def get(self) -> LiveKnowledge:
        if self.live is None:
            raise RuntimeError("the knowledge base is not loaded yet (Runtime.load)")
        return self.live

    def kb(self) -> KnowledgeBase:
        return self.get().kb

    def layer(self) -> IntentLayer:
        return self.get().layer


class Runtime:
    """The turn pipeline of one worker: the store, the live knowledge, the desk and the engine
    (built by the composition root, :mod:`bot.app`) and the knowledge's loading and reloading."""

    def __init__(self, config: Config, store: Store, desk: AgentDesk, engine: Engine, slot: KnowledgeSlot) -> None:
        self.config = config
        self.store = store
        self.desk = desk
        self.engine = engine
        self.repository = KnowledgeRepository(store.redis)
        self._slot = slot
        self._loaded = False
        if slot.live is not None:
            metrics.knowledge_version(slot.live.version)
        self._reload_lock = asyncio.Lock()
        self.actions: BusinessActions = engine.actions  # closed with the runtime

    @property
    def _knowledge(self) -> LiveKnowledge:
        return self._slot.get()

    @_knowledge.setter
    def _knowledge(self, live: LiveKnowledge) -> None:
        self._slot.live = live

    @property
    def knowledge(self) -> LiveKnowledge:
        return self._knowledge

    async def load(self, kb: KnowledgeBase | None = None, progress: bool = False) -> None:
        """Connect the store, load the live knowledge base (seeding an empty store from
        ``knowledge.path`` or the shipped FAQ) and build the intent layer; once per runtime.

        ``kb`` replaces the knowledge base for this process only (``kefu eval --kb``); a
        knowledge base given at construction is kept as is."""
        if self._loaded:
            return
        store, config = self.store, self.config
        await store.ping()
        try:
            await check_on_start(store.redis)  # refuses data newer than this code
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(f"cannot reach the store at {redact(config.store.url)}: {exc}") from exc
        if not store.durable:
            log.warning("store.url is memory://: conversations live in this process only and are lost "
                        "on restart; set store.url to redis://... for production")
        if self._slot.live is None:
            repository = self.repository
            version = await repository.version()
            if kb is None:
                kb = await repository.load()
                if kb is None:  # an empty store: seeded through the write path (lock, audit, announcement)
                    path = config.knowledge.path or str(default_kb_path())
                    kb, version = await KnowledgeService(store.redis).seed(load_kb(Path(path).expanduser()),
                                                                           note=path)
                    log.info("knowledge base seeded from %s (%d entries)", path, len(kb))
            layer, retriever = await asyncio.to_thread(build_live_layer, kb, config, progress)
            self._knowledge = LiveKnowledge(kb, layer, version, retriever)
            metrics.knowledge_version(version)
        self._loaded = True
        settle_heap()

    @classmethod
    async def start(
        cls,
        config: Config,
        *,
        redis: aioredis.Redis | None = None,
        kb: KnowledgeBase | None = None,
        desk: AgentDesk | None = None,
        progress: bool = False,
    ) -> Runtime:
        """The pipeline without HTTP, connected and loaded: :func:`bot.app.start_runtime`."""
        from bot.app import start_runtime

        return await start_runtime(config, redis=redis, kb=kb, desk=desk, progress=progress)

    async def reload_knowledge(self) -> bool:
        """Rebuild the intent layer if the stored knowledge base changed; True if it did.

        Concurrent calls (a pub/sub message and a version poll at once) are serialised; when
        only a few entries changed, only those are re-indexed."""
        async with self._reload_lock:
            current = self._knowledge
            rebuilt: list[IntentLayer] = []

            def rebuild(kb: KnowledgeBase) -> Retriever:  # in reindex's thread: the layer is built there too
                layer, retriever = build_live_layer(kb, self.config)
                rebuilt.append(layer)
                return retriever

            fresh = await reindex(self.repository, current.kb, current.version, current.retriever, rebuild)
            if fresh is None:
                return False
            layer = rebuilt[0] if rebuilt else layer_on(fresh.retriever, fresh.kb, self.config)
            self._knowledge = LiveKnowledge(fresh.kb, layer, fresh.version, fresh.retriever)
            metrics.knowledge_version(fresh.version)
            log.info("knowledge version %d loaded (%d changed, %d removed)", fresh.version, len(fresh.changed),
                     len(fresh.removed))
            settle_heap()
            return True

    async def close(self) -> None:
        await self.actions.close()
        await self.store.close()
