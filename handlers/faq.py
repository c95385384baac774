"""Answer from the knowledge base, or ask which of a few close entries the customer meant."""

from __future__ import annotations

from bot.types import Decision, Reply, Suggestion
from handlers.texts import say
from knowledge.schema import KnowledgeBase


def answer(decision: Decision, kb: KnowledgeBase) -> Reply | None:
    """The entry's answer; close runners-up (``decision.suggestions``) follow as related questions."""
    entry = kb.get(decision.entry_id or "")
    if entry is None:
        return None
    related = [e for e in (kb.get(i) for i in decision.suggestions) if e is not None and e.id != entry.id]
    if not related:
        return Reply(entry.answer_in(decision.language))
    suggestions = tuple(Suggestion(e.title_in(decision.language), e.id) for e in related)
    lines = [entry.answer_in(decision.language), "", say("related_intro", decision.language)]
    lines += [f"{n}. {s.label}" for n, s in enumerate(suggestions, start=1)]
    return Reply("\n".join(lines), suggestions)


def clarify(decision: Decision, kb: KnowledgeBase) -> Reply:
    """"您是想问：1… 2…" with one suggestion per entry; the payload is the entry id."""
    entries = [e for e in (kb.get(i) for i in decision.suggestions) if e is not None]
    lines = [say("clarify_intro", decision.language)]
    suggestions = []
    for number, entry in enumerate(entries, start=1):
        title = entry.title_in(decision.language)
        lines.append(f"{number}. {title}")
        suggestions.append(Suggestion(title, entry.id))
    return Reply("\n".join(lines), tuple(suggestions))
