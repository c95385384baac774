"""The storage layer: every kind of durable state has one repository here.

Each repository owns its keys (named in :mod:`bot.keys`), its encoding and its Lua scripts
(registered once, :mod:`bot.storage.scripts`); code above it speaks in domain terms and never
holds a Redis command.

- :mod:`~bot.storage.client` — ``store.url`` → client (Redis, Sentinel, in-memory)
- :mod:`~bot.storage.conversations` — conversations, transcripts, turn lock, dedupe, rate counters
- :mod:`~bot.storage.records` — the dashboard's daily counters, recent and unanswered questions
- :mod:`~bot.storage.web` — web chat files, visitor names and secret, typing, new-session admission
- :mod:`~bot.storage.agents` — agent accounts, console sessions, API tokens, login counters
- :mod:`~bot.storage.outbox` — held replies, delivery windows, WeChat's reply memory
"""
