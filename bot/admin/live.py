"""This worker's knowledge sync, over its runtime: :class:`knowledge.sync.KnowledgeSync` reloading
``runtime.reload_knowledge`` and reporting the version the runtime answers from."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.runtime import Runtime
from knowledge.sync import POLL_SECONDS as POLL_SECONDS
from knowledge.sync import STALE_AFTER as STALE_AFTER
from knowledge.sync import KnowledgeSync as _KnowledgeSync
from knowledge.sync import served_versions as served_versions


class KnowledgeSync(_KnowledgeSync):
    def __init__(self, runtime: Runtime, poll_seconds: float = POLL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(runtime.store.redis, runtime.reload_knowledge, lambda: runtime.knowledge.version,
                         poll_seconds, clock)
        self.runtime = runtime
