"""Language detection and the text normalisation every rule-based detector shares.

Kefu answers in Chinese or English only, so detection is a cheap count of Han characters
against Latin words rather than a model: it must be fast, explainable and stable on very
short messages ("好的", "ok", "1").  :func:`normalize` lets the keyword lexicons in
``intents.escalation`` and ``intents.smalltalk`` be written once, in lowercase simplified
Chinese with half-width punctuation, and still match full-width, traditional or shouted input.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import TypeVar

# Traditional → simplified, only for characters that occur in Kefu's lexicons (complaints,
# escalation, smalltalk) and their common neighbours.  A full converter is not needed: the
# detectors only have to recognise their own keywords.  Pairs: traditional, simplified.
_TRADITIONAL_PAIRS = (
    "轉转訴诉們们經经導导騙骗錢钱搶抢壞坏報报體体師师訟讼電电話话視视臺台記记網网發发評评價价聽听問问題题說说"
    "過过遲迟還还沒没個个幾几禮礼週周兩两處处這这麼么麽么爛烂勁劲噁恶惡恶氣气滾滚媽妈謝谢見见機机嗎吗請请務务"
    "員员闆板負负責责長长會会協协監监門门關关讓让給给對对錯错實实開开頭头馬马聯联繫系係系從从來来時时間间點点"
    "號号為为爲为歡欢詢询賠赔償偿貨货單单運运費费買买賣卖東东邊边態态詐诈團团權权維维願愿聞闻樣样帳账戶户後后"
    "無无語语譜谱離离難难隊队專专線线幫帮應应廢废腦脑殘残礙碍罵骂煩烦亂乱議议鬧闹訂订郵邮遞递萬万錄录認认證证"
    "據据嚴严厲厉夠够數数鐘钟響响復复覆复親亲愛爱寶宝貝贝舉举場场總总層层終终於于連连續续極极憤愤討讨厭厌誤误"
    "裡里裏里囉啰啟启級级擊击姦奸騷骚擾扰傷伤辦办麥麦當当讀读聾聋敗败該该麵面雙双邁迈掛挂曬晒傳传誰谁稱称謊谎"
    "詞词詭诡隨随壓压緊紧趕赶幣币銀银虧亏貴贵錶表鍾钟檢检標标準准寫写類类達达館馆貼贴鐵铁輛辆領领雞鸡顧顾"
    "憑凭質质閉闭護护溝沟換换碼码撥拨賬账賴赖產产讚赞裝装恥耻臉脸強强盜盗罰罚"
)
_TRADITIONAL = str.maketrans(_TRADITIONAL_PAIRS[0::2], _TRADITIONAL_PAIRS[1::2])
_MULTI_CHAR_TRADITIONAL = (("甚麼", "什么"), ("甚么", "什么"), ("妳", "你"), ("祢", "你"))

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_NON_SPACE = re.compile(r"\S+")
_CLAUSE_SEPARATOR = re.compile(r"[,.!?;:~、。，！？；：…—()（）\"“”‘’]+")
_LATIN_ALNUM = re.compile(r"[a-z0-9]")

Label = TypeVar("Label")
_LATIN_WORD = re.compile(r"[a-zà-ÿ]+(?:'[a-z]+)?")

# Latin tokens Chinese speakers type inside Chinese conversations without switching language;
# on their own they keep the conversation's current language instead of flipping it to English.
LANGUAGE_NEUTRAL_TOKENS: tuple[str, ...] = (
    "ok", "okay", "okk", "k", "kk", "lol", "haha", "hh", "hhh", "emm", "emmm", "em", "hmm", "en", "ohh",
    "oh", "o", "pls", "plz", "vip", "app", "id", "qq", "wifi",
)
_NEUTRAL = frozenset(LANGUAGE_NEUTRAL_TOKENS)

# One Han character carries about as much as one English word, but short Latin tokens inside
# Chinese ("这个app", "order号") are common, so a Latin word counts a bit more than a Han
# character before English wins.
_LATIN_WORD_WEIGHT = 1.5


def to_simplified(text: str) -> str:
    """Map the traditional characters Kefu's lexicons care about to simplified ones."""
    for traditional, simplified in _MULTI_CHAR_TRADITIONAL:
        text = text.replace(traditional, simplified)
    return text.translate(_TRADITIONAL)


def normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """:func:`normalize` plus, for each output character, the index of its source character.

    Detectors match on the normalised text but quote the customer's own words back to the
    agent ("BBB", "騙子"), so they need to map a match back onto the original.
    """
    folded = unicodedata.normalize("NFKC", text).lower()
    source: Sequence[int]
    if len(folded) == len(text):  # the usual case: one output character per input character
        source = range(len(text))
    else:
        pieces = [unicodedata.normalize("NFKC", char).lower() for char in text]
        folded = "".join(pieces)
        source = [index for index, piece in enumerate(pieces) for _ in piece]
    chars: list[str] = []
    offsets: list[int] = []
    for run in _NON_SPACE.finditer(folded):  # collapse whitespace runs to one space, strip the ends
        if chars:
            chars.append(" ")
            offsets.append(source[run.start() - 1])
        chars.append(run.group())
        offsets.extend(source[run.start(): run.end()])
    return to_simplified("".join(chars)), offsets


def normalize(text: str) -> str:
    """Lowercase, half-width (NFKC), simplified, single-spaced text for keyword matching.

    NFKC turns full-width letters, digits and punctuation ("ＨＥＬＬＯ！？") into ASCII, so
    lexicons only need the half-width forms; emoji are kept (some detectors read them).
    """
    return normalize_with_offsets(text)[0]


def detect_language(text: str, default: str = "zh") -> str:
    """``"zh"`` or ``"en"`` for ``text``; ``default`` when it has no letters to judge by.

    ``default`` should be the conversation's current language, so "1", "👍", "???" or a
    lone "ok" do not flip a Chinese conversation into English (or the reverse).
    """
    normalized = normalize(text)
    han = len(_HAN.findall(normalized))
    words = [w for w in _LATIN_WORD.findall(normalized) if w not in _NEUTRAL]
    if han == 0 and not words:
        return default
    return "zh" if han >= len(words) * _LATIN_WORD_WEIGHT else "en"


def clauses(normalized: str) -> list[str]:
    """``normalized`` split at punctuation into stripped, non-empty clauses (spaces are kept inside)."""
    return [part.strip() for part in _CLAUSE_SEPARATOR.split(normalized) if part.strip()]


def read_as_tokens(clause: str, tokens: Sequence[tuple[Label, re.Pattern[str]]]) -> list[Label] | None:
    """The labels of ``clause`` read left to right as lexicon tokens, or None if anything is left over.

    At each position the longest matching token wins; spaces between tokens are skipped and a
    Latin token must end at a word boundary ("hi" does not read the start of "hire").  Used to
    recognise messages that consist *only* of smalltalk or of "never mind"-style cancels.
    """
    labels: list[Label] = []
    pos = 0
    while pos < len(clause):
        if clause[pos] == " ":
            pos += 1
            continue
        best_end, best_label = pos, None
        for label, pattern in tokens:
            match = pattern.match(clause, pos)
            if match is None or match.end() <= best_end:
                continue
            end = match.end()
            if end < len(clause) and _LATIN_ALNUM.match(clause[end - 1]) and _LATIN_ALNUM.match(clause[end]):
                continue
            best_end, best_label = end, label
        if best_end == pos or best_label is None:
            return None
        labels.append(best_label)
        pos = best_end
    return labels
