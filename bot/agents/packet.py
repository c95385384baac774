"""The handoff packet: what an agent reads in five seconds before their first word.

Built from the transcript and the decisions the engine already recorded on it (no remote
model): what the customer asked, what the bot answered, what they are unhappy about, what they
want, their customer type (docs/service-rules.md §3: angry, indecisive, insistent, friendly) and
the first words that suit that type.
"""

from __future__ import annotations

import re
from typing import Any

from bot.agents.tickets import mask_phones
from bot.types import Conversation, HandoffRequest, Role
from intents.escalation import detect_escalation

WANTS: tuple[tuple[str, str, str], ...] = (
    # (pattern, zh, en): what the customer asks the company to do
    (r"退款|退钱|把钱退|refund|money back", "退款", "a refund"),
    (r"换货|换一个|换个新|exchange|replace", "换货", "an exchange"),
    (r"退货|退回去|return (it|the)", "退货", "to return it"),
    (r"赔偿|补偿|赔钱|compensat", "赔偿", "compensation"),
    (r"发票|invoice|receipt", "发票", "an invoice"),
    (r"取消订单|不要了|cancel (my|the)? ?order", "取消订单", "to cancel the order"),
    (r"催|快点发|什么时候(到货|发货)|还没(收到|发货|到货)|还没到(?!账)|where is my (order|parcel)",
     "尽快收到货", "the delivery, soon"),
    (r"道歉|apolog", "道歉", "an apology"),
    (r"经理|领导|主管|manager|supervisor", "找负责人", "a manager"),
)
_POLITE = re.compile(r"谢谢|麻烦(您|你)|请问|您好|辛苦|thank|please|appreciate", re.IGNORECASE)
_UNSURE = re.compile(r"还是|要不要|该不该|不知道|纠结|犹豫|哪个好|哪一个|怎么选|whether|not sure|which one|should i",
                     re.IGNORECASE)
FIRST_WORDS = {
    "angry": ("非常抱歉让您遇到这样的事，您的心情我完全理解。我现在马上为您处理：",
              "I'm truly sorry this happened, and I understand how you feel. I'm on it right now:"),
    "insistent": ("您说的情况我都看到了，您慢慢说，我不打断您，听完马上给您一个明确的处理办法。",
                  "I've read everything you said. Please tell me the rest; I'm listening, and then I'll give you a "
                  "clear way forward."),
    "indecisive": ("我来帮您把几个办法讲清楚，您看哪个最合适：",
                   "Let me lay out the options clearly so you can pick what suits you best:"),
    "friendly": ("感谢您的耐心和理解！我马上为您处理。",
                 "Thank you for your patience! I'll take care of this right away."),
    "": ("您好，我是人工客服，已经看过您和智能客服的对话，马上为您处理。",
         "Hello, I've read your conversation with our assistant and will sort this out now."),
}
TYPE_WORDS = {"angry": ("生气", "angry"), "insistent": ("坚持", "insistent"), "indecisive": ("犹豫", "indecisive"),
              "friendly": ("友好", "friendly"), "": ("一般", "neutral")}


def _short(text: str, limit: int = 60) -> str:
    text = mask_phones(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def customer_type(said: list[str], request: HandoffRequest, clarified: int) -> str:
    """angry · insistent · indecisive · friendly, or "" when nothing shows (§3)."""
    signals = [s for s in (detect_escalation(text, said[:i]) for i, text in enumerate(said)) if s is not None]
    if any(s.angry or s.kind in ("anger", "insult") for s in signals):
        return "angry"
    persisting = ("repeated_question", "long_wait", "ultimatum", "unresolved")
    if request.reason == "repeated_failure" or any(s.kind in persisting for s in signals):
        return "insistent"
    if clarified >= 2 or any(_UNSURE.search(text) for text in said):
        return "indecisive"
    if request.reason == "complaint":
        return "angry" if len(said) <= 2 else "insistent"
    if any(_POLITE.search(text) for text in said):
        return "friendly"
    return ""


def build_packet(conv: Conversation, request: HandoffRequest) -> dict[str, Any]:
    """The packet as the console shows it (texts in the ticket's language, phones masked)."""
    zh = conv.language == "zh"
    said = [line.text for line in conv.transcript if line.role is Role.CUSTOMER and line.text.strip()]
    asked = [_short(t) for t in said if detect_escalation(t) is None][:2] or [_short(t) for t in said[:1]]
    answered: list[dict[str, Any]] = []
    clarified = 0
    for line in conv.transcript:
        decision = line.meta.get("decision") if line.role is Role.CUSTOMER else None
        if isinstance(decision, dict):
            if decision.get("action") == "clarify":
                clarified += 1
            if decision.get("action") == "answer" and decision.get("entry_id") and \
                    decision["entry_id"] not in [a["entry_id"] for a in answered]:
                answered.append({"entry_id": decision["entry_id"], "question": _short(line.text, 40)})
    wants = [(zh_word if zh else en_word) for pattern, zh_word, en_word in WANTS
             if any(re.search(pattern, text, re.IGNORECASE) for text in said)]
    unhappy = request.detail if request.reason in ("complaint", "repeated_failure") else ""
    kind = customer_type(said, request, clarified)
    first_zh, first_en = FIRST_WORDS[kind]
    type_zh, type_en = TYPE_WORDS[kind]
    return {
        "asked": asked, "bot_answered": answered[-3:], "unhappy_about": _short(unhappy, 80),
        "wants": wants[:3], "customer_type": kind, "customer_type_words": type_zh if zh else type_en,
        "first_words": first_zh if zh else first_en,
    }
