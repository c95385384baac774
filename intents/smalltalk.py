"""Recognise messages that are *only* smalltalk: greetings, thanks, goodbyes, "are you a bot?".

Precision matters more than recall here: a message that also carries a question ("你好，怎么退货",
"thanks, but where is my order") must reach the FAQ, so a message counts as smalltalk only
when it can be read, left to right, entirely as smalltalk tokens (plus particles, address
words like "亲"/"客服" and punctuation).  Acknowledgements ("好的", "ok", "got it", "👍") are
read as THANKS: they close a turn, and sending them to the FAQ would only produce a pointless
"I didn't understand" or handoff.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from intents.language import clauses, normalize, read_as_tokens


class Smalltalk(StrEnum):
    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    BOT_IDENTITY = "bot_identity"
    HELP = "help"  # "help", "你能做什么": what the bot can help with
    OFF_TOPIC = "off_topic"  # decided by the FAQ matcher (weather, poems), answered like HELP


# Each lexicon is a tuple of regular expressions over normalised text (lowercase, half-width,
# simplified).  A token must match completely; tokens may follow each other ("你好在吗",
# "ok thanks bye").  Extend a tuple to teach Kefu a new phrasing.
GREETING_TOKENS: tuple[str, ...] = (
    r"你好", r"您好", r"你们好", r"大家好", r"哈喽+", r"哈啰", r"哈罗", r"嗨+", r"嘿", r"喂",
    r"(?:客服|亲|亲亲|人|老板|掌柜|店家)?在(?:吗|么|嘛|不在|不|没|没有|嘛)", r"有人(?:在)?(?:吗|么|嘛)", r"有没有人在?",
    r"早", r"早安", r"午安", r"(?:早上|上午|中午|下午|晚上)好", r"(?:你|您)好(?:吗|么)", r"最近好吗", r"hel+o+",
    r"hallo", r"halo", r"hi+", r"hey+", r"hiya", r"heya", r"howdy", r"yo", r"greetings",
    r"good (?:morning|afternoon|evening|day)", r"morning", r"(?:hi|hello|hey) there",
    r"(?:is )?(?:any|some)(?:one|body) (?:there|here|around|online)", r"are you there", r"you there",
    r"how (?:are|r) (?:you|u)(?: doing)?(?: today)?", r"how'?s it going", r"what'?s up", r"sup", r"wassup",
    r"nice to meet you",
)
THANKS_TOKENS: tuple[str, ...] = (
    r"谢谢(?:你|您|你们|亲|啦|了)?", r"谢(?:了|啦)", r"多谢(?:啦|了|你|您)?", r"感谢(?:你|您|你们)?",
    r"(?:非常|十分|万分|太|真是太|真的)感谢(?:你|您|你们)?(?:了)?", r"(?:非常|太|真的)?谢谢(?:你|您)?(?:了)?",
    r"辛苦(?:了|啦|你了|您了)", r"麻烦(?:你|您)?了", r"好的?", r"好(?:哒|滴|嘞|吧|呀)", r"行(?:吧|的)?", r"可以(?:了)?",
    r"嗯+", r"明白(?:了)?", r"知道(?:了)?", r"了解(?:了)?", r"懂了", r"收到(?:了)?", r"没问题", r"(?:太)?棒(?:了)?",
    r"很好", r"不错", r"赞", r"ok+", r"okay", r"k+", r"thanks?", r"thank (?:you|u)", r"thx", r"thnx", r"ty", r"tysm",
    r"tks", r"thanks? (?:a lot|so much|very much|a bunch|a ton|again)", r"thank (?:you|u) (?:so much|very much|again)",
    r"many thanks", r"much appreciated", r"(?:i )?appreciate (?:it|that|your help)", r"cheers", r"great", r"perfect",
    r"awesome", r"cool", r"nice", r"got it", r"understood", r"al(?:l )?right", r"sounds good", r"noted", r"sure",
    r"that helps", r"that helped", r"(?:very )?helpful", r"thanks? (?:you )?for (?:your|the) help",
    r"thanks? for helping",
    # praise is thanks too ("great service, thanks a lot!"), never sarcasm on its own
    r"(?:great|good|excellent|amazing|awesome|fantastic|lovely|nice) (?:service|job|work|support)", r"wow+",
    r"(?:that was|that's|so|very|super|really) (?:fast|quick|helpful)",
    r"服务(?:真|很|太|超|非常)?(?:好|棒|周到|贴心)(?:了)?",
    r"(?:给你们)?点赞", r"回复(?:得)?(?:真|很|好)快",
)
GOODBYE_TOKENS: tuple[str, ...] = (
    r"再见", r"拜拜", r"拜", r"掰掰", r"88", r"886", r"回见", r"回头见", r"下次见", r"明天见", r"晚安",
    r"先这样(?:吧)?", r"就这样(?:吧)?", r"没事了", r"没有了", r"没别的了", r"没(?:有)?其他问题了", r"没问题了",
    r"不用了", r"bye+", r"bye[ -]?bye", r"good ?bye", r"see (?:you|ya|u)(?: later| soon)?", r"cya", r"later",
    r"good night", r"gn", r"take care", r"have a (?:nice|good|great) (?:day|one|evening|weekend)", r"that'?s all",
    r"that'?s it", r"nothing else", r"no more questions", r"i'?m good", r"that'?s everything", r"ttyl", r"no thanks?",
    r"no thank you",
)
BOT_IDENTITY_TOKENS: tuple[str, ...] = (
    r"(?:你|您)?(?:是不是|是)(?:个|一个)?(?:机器人|真人|人工|人|ai|智能客服|自动回复|机器)"
    r"(?:还是(?:机器人|真人|人工|人|ai|机器))?(?:吗|么|嘛|啊|呀)?",
    r"(?:机器人|真人|自动回复)(?:吗|么|嘛)", r"(?:你|您)是谁", r"(?:你|您)叫什么(?:名字)?", r"(?:你|您)是什么",
    r"(?:are|r) (?:you|u) (?:a |an |even a |actually a |really a )?"
    r"(?:bot|robot|human|real person|person|machine|ai|real|human being|chat ?bot|computer|chatgpt|automated)"
    r"(?: or (?:a |an )?(?:bot|robot|human|real person|person|machine|ai))?",
    r"(?:is|am) (?:this|that|it|i) (?:talking to |chatting with |speaking to |speaking with )?(?:a |an )?"
    r"(?:bot|robot|human|real person|person|machine|ai|automated(?: \w+)?|real|live person|live agent|chat ?bot)",
    r"(?:you|u) (?:are|r) (?:a |an )?(?:bot|robot|human|real person|machine|ai|chat ?bot)",
    r"who (?:are you|am i talking to|is this)", r"what are you", r"what'?s your name",
)
HELP_TOKENS: tuple[str, ...] = (
    r"help", r"help me", r"(?:i )?need (?:some )?help", r"can (?:you|u) help(?: me)?", r"menu", r"options",
    r"what can (?:you|u) do", r"what do (?:you|u) do", r"what can i ask(?: you)?", r"how does this work",
    r"帮助", r"帮帮我", r"求助", r"菜单", r"(?:你|您)(?:能|可以|会)(?:做|干|帮我做|帮我干|帮我)?(?:什么|啥)",
    r"(?:我)?(?:能|可以)问(?:你|您)?(?:些)?(?:什么|啥)", r"有什么功能", r"怎么用",
)
# Words that carry no intent of their own: particles, address terms, politeness.
FILLER_TOKENS: tuple[str, ...] = (
    r"[啊呀呢啦哈吧嘛哦喔噢哟么咯嘞哇诶欸]+", r"亲+", r"亲爱的", r"客服", r"小姐姐", r"小哥哥", r"美女", r"帅哥",
    r"老板", r"掌柜", r"店家", r"朋友", r"那", r"那就", r"哈哈+", r"嘻嘻", r"呵呵", r"好的呢", r"dear", r"sir",
    r"madam", r"guys", r"friend", r"again", r"so much", r"very much", r"and", r"oh", r"ah", r"haha+", r"lol", r"then",
    r"well", r"kefu", r"bot", r"everyone", r"all", r"please",
)

_PRIORITY = (Smalltalk.BOT_IDENTITY, Smalltalk.HELP, Smalltalk.GOODBYE, Smalltalk.THANKS, Smalltalk.GREETING)
_FILLER = "filler"
_LEXICONS: tuple[tuple[Smalltalk | str, tuple[str, ...]], ...] = (
    (Smalltalk.BOT_IDENTITY, BOT_IDENTITY_TOKENS), (Smalltalk.HELP, HELP_TOKENS), (Smalltalk.GOODBYE, GOODBYE_TOKENS),
    (Smalltalk.THANKS, THANKS_TOKENS), (Smalltalk.GREETING, GREETING_TOKENS), (_FILLER, FILLER_TOKENS),
)
_TOKENS: tuple[tuple[Smalltalk | str, re.Pattern[str]], ...] = tuple(
    (intent, re.compile(pattern)) for intent, patterns in _LEXICONS for pattern in patterns
)
# Emoji that are a whole message on their own: thumbs up / folded hands / OK hand / hearts
# mean "thanks, got it"; a waving hand is a hello.
_THANKS_EMOJI = frozenset("👍🙏👌❤💕💖😊🙂😀😄🌹✌")
_GREETING_EMOJI = frozenset("👋")


def _is_symbol(char: str) -> bool:
    return unicodedata.category(char) in {"So", "Sk", "Mn", "Cf", "Cs"} or char in "\ufe0f\u200d"


def detect_smalltalk(text: str) -> Smalltalk | None:
    """The smalltalk intent when the whole message is smalltalk, else None.

    Mixed smalltalk resolves to the most specific intent: "hi, are you a bot?" is a bot
    identity question, "thanks, bye" a goodbye.
    """
    normalized = normalize(text)
    symbols = [c for c in normalized if _is_symbol(c)]
    words = "".join(" " if _is_symbol(c) else c for c in normalized)
    parts = clauses(words)
    if not parts:
        if any(c in _THANKS_EMOJI for c in symbols):
            return Smalltalk.THANKS
        if any(c in _GREETING_EMOJI for c in symbols):
            return Smalltalk.GREETING
        return None
    found: set[Smalltalk | str] = set()
    for clause in parts:
        labels = read_as_tokens(clause, _TOKENS)
        if labels is None:
            return None
        found.update(labels)
    return next((intent for intent in _PRIORITY if intent in found), None)
