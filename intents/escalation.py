"""Detect complaints and requests for a human, so the bot hands off instead of answering.

The service rules (docs/service-rules.md §2-3) say a complaint is never answered with an FAQ
paragraph: the bot apologises and hands off at once.  Missing a complaint is the costly error,
but handing off routine questions ("退款怎么还没到账", "package is delayed") wastes agents and
teaches customers nothing, so the rules fire only on explicit signals:

* a request for a human or a manager (转人工, 真人, 找你们领导, talk to a person, supervisor);
* anger or insults (骗子, 垃圾, 什么破, scam, useless, wtf);
* threats to go to authorities, courts or the public (12315, 消协, 律师, 曝光, BBB, lawsuit);
* an explicit complaint, an ultimatum, "nobody is handling this", a demand for compensation;
* a long wait *stated with frustration* (see :func:`_long_wait`);
* the bot failing: "答非所问", "I already asked", or the same message sent three times.

Borderline rules, chosen deliberately:

* A plain question about a delay is routine, with or without a duration ("快递三天了还没到",
  "returned it last week, still waiting on the money", "still hasn't arrived after 2 weeks, is
  it lost?").  A wait escalates when the customer says they *waited* two weeks or more
  ("等了半个月", "still waiting after 2 weeks", "waiting for ages"), or when any still-open
  duration comes with a frustration marker (都一个星期了, 整整, 到底, "!!!", ALL CAPS).
* Asking *how* to complain ("怎么投诉", "how do I complain about a seller?") is handed off:
  it announces a complaint, and first-contact responsibility means we take it ourselves.
* "人工客服" / "human agents" next to an hours or contact question ("人工客服几点上班",
  "怎么联系人工客服", "are your human agents available on sundays") is an FAQ question, not a
  request; an explicit verb ("转人工", "talk to a human") is a request whatever else is said.
* "manager" only counts as a demand: "account manager", "客户经理", "给领导买礼物", "老板，有货吗"
  do not fire.  A manager demand is classed as a complaint (it is an escalation of one).
* Negated requests ("不用转人工了", "no need for a human", "我不是要投诉") do not fire;
  "不用了"-style messages are cancels (:func:`is_cancel_request`).
* A question in capitals ("WHERE IS MY ORDER???") is routine; a whole message yelled in capitals
  with "!!" ("NOT HAPPY!!!") is anger.  Otherwise shouting only sharpens other signals.
* Product-quality words ("质量有点差", "the box was damaged") are routine after-sales cases;
  "差" only fires about service ("服务太差", "态度差") or as "差劲"/"太差了" on its own.

Lexicons are module-level tuples of regular expressions over normalised text (lowercase,
half-width, simplified; see :func:`intents.language.normalize`); extend them to adapt Kefu.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from bot.types import Intent, Reason
from intents.language import clauses, normalize, normalize_with_offsets, read_as_tokens
from intents.smalltalk import detect_smalltalk

HUMAN_REQUEST = Reason.HUMAN_REQUEST
COMPLAINT = Reason.COMPLAINT
REPEATED_FAILURE = Reason.REPEATED_FAILURE


@dataclass(frozen=True)
class Escalation:
    """Why the bot hands off; ``detail`` / ``detail_zh`` are one line for the agent."""

    reason: Reason  # human_request | complaint | repeated_failure
    kind: Intent  # finer cause, e.g. asked_for_human, threat_authority, long_wait
    detail: str
    detail_zh: str
    angry: bool  # anger or insults: act fast and apologise first


@dataclass(frozen=True)
class Signal:
    """One lexicon: what it means (kind, reason) and how the agent is told (detail templates).

    ``{t}`` in a template is replaced by the customer's words that matched (the named group
    ``q`` when the pattern has one).  ``negatable`` signals are dropped when preceded by a
    negation in the same clause ("不用转人工", "I don't need an agent").
    """

    kind: Intent
    reason: Reason
    patterns: tuple[str, ...]
    detail: str
    detail_zh: str
    negatable: bool = False
    angry: bool = False
    info_question_cancels: bool = False
    sentence: bool = False  # quote the whole sentence: what was said and what happened, not a fragment


# --- lexicons -------------------------------------------------------------------------------
# English patterns are matched as whole words (no letter or digit on either side).

AUTHORITY_12315 = (r"12315", r"12345热线", r"打12345", r"315晚会", r"黑猫投诉")
AUTHORITY_CONSUMER_ASSOCIATION = (r"消协", r"消费者协会", r"消保委", r"消委会")
AUTHORITY_REGULATORS = (
    r"工商(?:局|部门|所)?(?!银行|行|卡|注册|执照|登记|管理学)", r"市场监(?:管|督)(?:局|部门|总局)?",
    r"监管(?:部门|机构|局)", r"(?:向|去|找|到|给|跟)(?:有关|相关|主管|上级|监管)部门",
    r"(?:有关|相关|主管|上级)部门(?:投诉|举报|反映)", r"举报(?:到|给)", r"质监局", r"物价局", r"银保监", r"网信办",
)
AUTHORITY_POLICE = (
    r"(?:我|就|要|去|会|直接|马上|立刻|只能|只好|得|准备|必须|已经|帮我)(?:要|去|会|只能)?(?P<q>报警)(?!器|声|灯|码|提示|信息)",
    r"报警(?:了|处理)", r"打110", r"(?:叫|找)警察", r"公安局?",
    r"(?:call|calling|contact|contacting|involve|involving|get|go to|going to|tell) the (?:police|cops)",
    r"report (?:you|this|it) to the police",
)
AUTHORITY_EN = (
    r"bbb", r"better business bureau", r"ftc", r"consumer protection(?: agency| bureau)?", r"trading standards",
    r"attorney general", r"ombudsman", r"cfpb",
    r"(?:the )?consumers?'? (?:association|council|rights (?:association|group|organi[sz]ation))",
)
# "I'll report you": the agent reads the customer's own words, not a half-sentence.
REPORT_EN = (
    r"report (?:you|u|your (?:company|store|shop|business)|this (?:company|store|shop))(?: guys)?"
    r"(?: to (?:the |a )?[a-z]+(?: [a-z]+){0,3})?",
)
LEGAL = (
    r"律师(?:函)?", r"起诉", r"法院", r"打官司", r"诉讼", r"仲裁", r"法律(?:途径|手段|程序|责任|武器)", r"维权",
    r"告(?:你|你们|死你们|到法院)", r"去告", r"把你们告",
    r"(?:my|our|a|the) (?:lawyer|attorney|solicitor)s? (?:will|is going to|are going to|'ll)",
    r"(?:my|our) (?:lawyer|attorney|solicitor)s?",
    r"(?:get|call|contact|hire|talk to|speak to|speak with|consult|involve|have|get in) (?:a|my|our) "
    r"(?:lawyer|attorney|solicitor)",
    r"lawsuit", r"legal action", r"(?:维护|保护|捍卫)(?:我的|自己的)?(?:合法)?权益",
    r"消费者权益(?!(?:保护)?日)(?:保护法)?",
    r"small claims", r"(?:take|taking|see) (?:you|u|this|them) (?:to|in) court", r"in court",
    r"(?:will|gonna|going to|i'?ll|ill|to|and|or|should|could|can|might) sue", r"sue (?:you|u|your|the company|them)",
)
PUBLIC_MEDIA = (
    r"曝光", r"记者", r"(?:找|联系|告诉|让|通知|打给|去|上|打)电视台", r"电视台(?:曝光|报道|来)",
    r"(?:找|联系|告诉|让|通知|打给)(?:新闻)?媒体", r"媒体(?:曝光|报道)", r"(?<![早晚马网路线])上新闻",
    r"(?:发|发到|发在|挂|挂到|晒|晒到|传到|放到|写到|po到|po|在|去|上)(?:[^,.!?;，。！？；]{0,3})"
    r"(?:微博|抖音|小红书|朋友圈|知乎|贴吧|b站|快手|大众点评|网上|各大平台|社交媒体|媒体)(?:上)?"
    r"(?=[^,.!?;，。！？；]{0,8}(?:曝光|让大家|说说|评评理|看看|揭露|骂|吐槽|发帖|发文|宣传|告诉))",
    r"(?:要|会|就|准备|马上|立刻|打算|去|必须)(?:把[^,.!?;，。！？；]{0,12})?(?:发到|发在|挂到|晒到|传到|放到|写到|po到|发|挂|晒)"
    r"(?:[^,.!?;，。！？；]{0,3})(?:微博|抖音|小红书|朋友圈|知乎|贴吧|网上)",
    r"让(?:大家|所有人|全网|更多人)(?:都)?(?:知道|看看|评评理)",
    r"(?:post|posting|put|putting|share|sharing|write|writing|tell|telling|expose|blast|blasting)\b[^,.!?;]{0,30}"
    r"\b(?:on |to )(?:twitter|x|reddit|facebook|fb|instagram|ig|tiktok|youtube|social media|the internet|online|"
    r"the news|the media)",
    r"go(?:ing)? public", r"(?:contact|call|tell|talk to) (?:the|a) (?:media|press|news|journalist|reporter)",
    r"expose (?:you|u|your)", r"tell (?:everyone|everybody|all my friends)",
)
PUBLIC_REVIEW = (
    r"(?<!删除)(?<!删)(?<!修改)(?<!追加)差评", r"(?:打|给)(?:你们)?(?:一|1)星", r"(?:一|1)星(?:评价|好评)",
    r"(?:bad|negative|terrible|horrible|1[- ]?star|one[- ]?star|scathing) reviews?", r"yelp", r"trustpilot",
)
CHARGEBACK = (
    r"charge ?backs?", r"reverse (?:the|this) charge",
    r"(?:bank|card company|credit card company|paypal)\b[^.!?]{0,40}\breverse",
    r"dispute (?:the |this |it |my )?(?:charge |payment |transaction )?with (?:my|the) "
    r"(?:bank|card|credit card|card company|paypal)",
    r"paypal (?:dispute|claim)", r"reverse (?:the|this|my) (?:charge|payment)s? (?:with|through) my (?:bank|card)",
    r"拒付", r"(?:找|让)银行(?:冻结|追回|拒付)",
)
INSULTS = (
    r"骗子", r"骗人", r"骗钱", r"骗我", r"骗局", r"欺骗", r"诈骗", r"欺诈", r"忽悠",
    r"(?:垃圾|辣鸡|拉圾|垃鸡)(?!袋|桶|篓|箱|分类|处理器|短信|邮件|电话|清理|回收|站|车)", r"抢钱",
    r"坑(?:人|钱|爹|我|死|了我)", r"被坑", r"太坑", r"大坑", r"黑店", r"奸商", r"无良", r"黑心", r"流氓", r"强盗",
    r"土匪", r"傻(?:逼|b|叉|x)", r"煞笔", r"(?<![a-z])sb(?![a-z])", r"脑残", r"智障", r"弱智", r"白痴", r"蠢", r"笨蛋",
    r"(?:真|好|太)笨", r"废物", r"饭桶", r"人渣", r"不要脸", r"无耻", r"(?:给我|你|赶紧)滚", r"滚(?:蛋|开|吧)",
    r"^滚(?![\u4e00-\u9fff])", r"妈的", r"他妈", r"特么", r"tmd", r"nmd", r"nmsl", r"cnm", r"操(?:你|蛋)", r"我操",
    r"草泥马", r"去死", r"(?:有病|神经病)(?:吧|啊|呀)?", r"听不懂人话", r"还是(?:不是)?人吗", r"狗屁", r"屁用",
    r"什么玩意", r"破(?:玩意|东西|店|平台|公司|客服|机器人|app|系统|网站|服务)", r"scam(?:s|mer|mers|med|ming)?",
    r"(?:this is|that'?s|it'?s|is a|total|complete|pure|such a|what a|you|you'?re|bunch of) (?:a )?fraud",
    r"frauds(?:ters)?", r"fraudsters?", r"rip[- ]?off", r"ripped off", r"liars?", r"lying to me", r"(?:you|u) lied",
    r"cheat(?:ed|ing|ers?)", r"thie(?:f|ves)", r"crooks?", r"con artists?", r"swindlers?",
    r"(?:you|u|they|company) (?:stole|are stealing|steal)", r"robbery", r"idiots?", r"morons?",
    r"(?:stupid|dumb) (?:bot|robot|machine|ai|company|service|store|shop|thing|app|website|site|system|people)",
    r"(?:you|u|ur|you'?re|you are|your) (?:so |really |such )?(?:stupid|dumb|useless|incompetent|pathetic)",
    r"(?:bot|robot|ai|machine|system|app|website|site|service|company|store|shop|you|u|you guys) (?:is|are|r) "
    r"(?:so |really |such |very |fucking |damn |just )?(?:stupid|dumb|useless|pathetic|incompetent)",
    r"useless", r"worthless", r"incompeten(?:t|ce)", r"clowns",
    r"(?:is|are|such|absolute|total|complete|pure|utter) (?:garbage|trash|rubbish|junk|crap)",
    r"(?:garbage|trash|rubbish|junk|crap) (?:service|company|store|shop|product|quality|bot|app|website|support)",
    r"f+u+c+k+\w*", r"shit+\w*", r"bullshit", r"crap(?:py)?", r"damn", r"bastards?",
)
ANGER = (
    r"差劲", r"太差(?:了|劲)?(?=$|[!！。.?？~]|了)", r"(?:真|太|好|特别|极其|非常|超|巨|贼)?(?:烂透|稀烂)",
    r"(?:服务|态度|客服|售后|你们|体验|平台|店铺|这家店|公司|效率|处理)[^,.!?;，。！？；]{0,4}"
    r"(?:太|真|很|特别|极其|非常|超|好|巨|贼|也太|这么|那么)?(?:差(?!不多|价|额|点|距|一|几|评|别)|烂|糟糕|恶劣)",
    r"什么破", r"恶心", r"气死", r"气人", r"生气", r"愤怒(?!的小鸟)", r"火大", r"恼火", r"受够了", r"忍无可忍", r"无语",
    r"离谱",
    r"(?:太|很|真|好)?过分(?:了)?(?<!^过分)", r"欺负(?:人|消费者|我|老百姓|顾客)", r"不像话", r"岂有此理", r"什么鬼",
    r"搞什么", r"搞毛", r"耍(?:我|人)", r"糊弄", r"(?:太|很|非常|真|彻底|极其|特别|好|让人|令人)失望",
    r"你们(?:就是这么|就这么|就这样|根本|从来|竟然|居然|还好意思|有脸)", r"(?:还|也|都|拒不|死不)不?承认",
    r"合理的解释", r"(?:给|要)(?:我)?(?:个|一个)(?:合理的)?解释", r"(?:want|demand|deserve|owe me) an explanation",
    r"崩溃", r"(?:真|我)服了|服了你们", r"不靠谱", r"霸王条款", r"再也不(?:买|来|用|会买|会来|在你们)",
    r"(?<!提供)(?<!有)(?<!哪些)(?<!是)什么(?:态度|服务)(?:啊|呀|嘛)?(?=$|[,.!?;，。！？；])",
    r"这(?:叫|算)什么(?:态度|服务)", r"这就是你们的(?:服务|态度)", r"还(?:想不想|做不做|要不要)(?:做)?(?:生意|干)",
    r"怎么做生意的", r"迟早(?:倒闭|关门|完蛋)", r"(?:有点|有没有|没有|没)(?:责任心|良心|素质)", r"什么素质",
    r"良心(?:不会痛|被狗吃)", r"凭什么", r"虚假宣传", r"一点用(?:都|也)没有", r"毫无用处",
    r"(?:马上|立刻|立即|赶紧)[!]", r"(?:就该|应该|活该)被(?:封|查|罚|取缔|投诉)", r"该倒闭", r"寒心", r"心寒", r"心累",
    r"憋屈", r"窝火", r"闹心", r"糟心", r"添堵", r"一而再(?:再而三)?", r"(?:全是|都是|就是)套路", r"套路我",
    r"有完没完", r"烦不烦", r"够了[!]", r"算账", r"卖假货", r"(?:全|都)是假货",
    r"(?:非常|很|极其|十分|特别|太)不满(?:意)?", r"(?:无法|不能)接受", r"差到(?:极点|爆|家)", r"(?:太)?不专业",
    r"浪费我(?:的)?时间", r"不认账", r"耍赖", r"赖账", r"抵赖", r"拉黑你们", r"最(?:差|烂)", r"坑死", r"😡", r"🤬",
    r"💢", r"unacceptable", r"not acceptable", r"terrible", r"terible", r"terrable", r"horrible", r"awful", r"dreadful",
    r"abysmal", r"atrocious", r"appalling", r"disgust(?:ing|ed)", r"disgrace(?:ful)?", r"shameful", r"outrageous",
    r"outraged", r"ridiculous", r"rediculous", r"ridiculus", r"absurd", r"pathetic", r"worst", r"sucks?",
    r"(?:bad|poor|lousy|shoddy) (?:service|support|customer service)",
    r"(?:very|so|really|extremely|deeply) disappointed", r"furious", r"livid", r"pissed(?: off)?",
    r"(?:i'?m|i am|so|very|really|extremely|makes me|getting) angry", r"fed up", r"sick (?:of|and tired)",
    r"had enough",
    r"enough is enough", r"last straw", r"tired of (?:waiting|this|your|you)", r"never (?:again|(?:order|buy|shop|use)"
    r"\w*[^,.!?;]{0,25} again)", r"what the (?:hell|heck|fuck)", r"wtf", r"wth", r"wtaf", r"ffs", r"omfg",
    r"(?:this is|that'?s|what|is this|you'?re|such|complete|total) (?:a )?(?:joke|farce|disgrace)", r"joke of a",
    r"(?:is|are|'s|'re) (?:a |an |such a |a complete |a total |an absolute |a bad )?(?:joke|farce|disgrace|nightmare)",
    r"disappoint(?:ed|ing|ment)", r"waste of (?:my )?(?:time|money)",
    r"(?:lost|losing) (?:a|my|your) (?:customer|business)",
    r"what kind of (?:service|company|business|store|shop|support) is this", r"i'?m done with (?:you|this|your)",
    r"how dare",
    r"(?:so|very|really|extremely|totally|deeply|absolutely) (?:upset|mad|unhappy|dissatisfied|displeased)",
    r"(?:i'?m|i am) (?:upset|mad)", r"not (?:happy|satisfied|pleased) at all",
    r"not (?:happy|satisfied|pleased) with (?:how|the way|your (?:service|support|company)|the service)",
    r"frustrat(?:ed|ing|ion)", r"fuming", r"annoy(?:ed|ing)", r"irritat(?:ed|ing)", r"infuriat(?:ed|ing)",
    r"exasperat(?:ed|ing)", r"^enough", r"take my (?:business|money) elsewhere", r"false advertising", r"misleading",
    r"wast(?:e|ed|ing) (?:\w+ ){0,3}(?:of )?(?:my|our) time", r"stop wasting", r"shame on (?:you|u)", r"unbelievable",
    r"insane",
)
MANAGER = (
    r"(?:找|叫|让|请|要|喊|换|见|把)(?:个|一个|一下|下)?(?:你们|你们的|你的|你家|贵司|你们公司)?(?:的)?"
    r"(?P<q>经理|领导|主管(?!部门)|负责人|上级|上司|店长|管事的|老大|能做主的|说了算的|高层)",
    r"(?:找|叫|让|喊|见)(?:你们|你们的)(?:的)?(?P<q>老板)",
    r"(?:你们|你们的|你家)(?P<q>经理|领导|主管|负责人|老板|店长|老大)"
    r"(?:呢|在哪|在吗|出来|来|过来)", r"(?P<q>经理|领导|主管|负责人|店长)(?:出来|过来|呢)",
    r"(?P<q>管事的|能做主的|说了算的|能管事的)人?", r"^(?P<q>经理|领导|主管|负责人)$",
    r"(?:talk|speak|chat)\s+(?:to|with)\s+(?:a|the|your|ur|some)?\s*(?P<q>manager|manger|supervisor|supervisior|boss|"
    r"superior|someone (?:in charge|senior|higher up|more senior)|higher up)",
    r"(?:get|give|want|need|demand|call|fetch|bring|request|see|escalate (?:this |it |me )?to)\s+(?:me\s+)?"
    r"(?:a|the|your|ur|some)?\s*(?P<q>manager|manger|supervisor|supervisior|boss|superior)",
    r"(?P<q>manager|supervisor)\s*(?:please|pls|plz|now|asap|!)", r"^(?P<q>manager|supervisor)$", r"(?P<q>escalate)",
)
COMPLAINT_WORDS = (
    r"投诉", r"投述", r"客诉", r"举报", r"申诉", r"讨(?:个)?说法", r"给(?:我)?(?:个|一个)?(?:说法|交代)", r"怎么交代",
    r"complaint", r"complain(?:ing|ed|s)?", r"complian", r"(?:file|lodge|make|raise|submit) a (?:formal )?compliant",
)
ULTIMATUM = (
    r"再不(?:给我)?(?:处理|解决|退|给|发|回复|答复|联系|赔)[^,.!?;。！？；]{0,12}(?:就|我就)",
    r"(?:不|没)(?:给我)?(?:处理|解决|退款|退钱|答复|回复|赔)(?:的话)?[,，]?我就", r"否则[^。.!?！？]{0,6}(?:就|我)",
    r"if (?:you|u) (?:don'?t|do not|won'?t|can'?t)\b[^.!?]{0,40}\bi(?:'ll| will| am going to|'m going to| shall)",
    r"or else", r"or i(?:'ll| will)", r"or (?:we'?re|i'?m) (?:done|finished)",
    r"(?:last|final) (?:attempt|chance|warning|time i'?m asking)",
    r"最后(?:一次|通牒)(?:机会|警告)?", r"(?:go|going|goes) to (?:my|the) bank",
    r"(?:今天|马上|立刻|现在|立即)?必须(?:给我|要)?(?:解决|处理|退款|退钱|赔|答复|回复|给个说法|道歉)",
    r"(?:赶紧|立刻|马上|快)(?:给我)?退钱", r"退钱[!]",
    r"(?:want|give me|demand) my money back(?: now| right now| immediately| asap| today|!)",
)
UNRESOLVED = (
    r"没人(?:管|理|处理|回|回复|回应|负责|搭理|跟进)", r"都没人", r"一直没人", r"不理人", r"不理我", r"踢皮球",
    r"推来推去", r"(?:多次|屡次|反复|好几次|几次)(?:联系|反映|投诉|沟通|催|打电话)",
    r"(?:找|联系|打给|催|反映)了?(?:你们|客服)?(?:都)?(?:[两三四五六七八九十]|\d+|好几|很多|无数)(?:次|回|遍)",
    r"没有任何(?:回复|回应|处理|结果|消息|进展)",
    r"(?:trying|tried) to (?:reach|contact|get hold of|get through to) (?:someone|anyone|you|a human|a person|support|"
    r"customer service)",
    r"can'?t (?:reach|contact|get hold of|get through to) (?:anyone|someone|you|a human|a person)",
    r"(?:电话|客服)(?:一直|根本|总是|老是)(?:打不通|没人接)", r"推卸", r"互相推", r"不解决问题",
    r"根本不(?:解决|处理|管|理|回)", r"不给(?:我)?(?:解决|处理)", r"不作为", r"石沉大海", r"没(?:有)?下文", r"不了了之",
    r"敷衍", r"拖了", r"一拖再拖", r"拖延", r"拖着不", r"拖拖拉拉", r"拖到现在", r"故意拖",
    r"(?:nobody|no one|no-one|noone) (?:has |is )?(?:answering|responding|replying|picking up|"
    r"helps?|helped|helping|responds?|responded|answers?|answered|replies|"
    r"replied|cares|gets back|got back|fixed|solved|sorted|is helping|is responding|will help)",
    r"no (?:response|reply) (?:from|at all|for)",
    r"never (?:got|received|had) (?:a |any )?(?:reply|response|answer|call back)", r"ignor(?:ed|ing) (?:me|my)",
    r"run ?around", r"passing me around", r"still not (?:resolved|fixed|sorted)",
    r"i'?ve (?:contacted|called|emailed|written to|messaged) (?:you|u|your \w+)[^.!?]{0,20}(?:times|already|before)",
)
# A demand shouted with "!!" ("我要退款！！！", "refund me now!!"); a plain "我要退款" is a question.
DEMAND_SHOUTED = (
    r"(?:我要|给我|马上|立刻|赶紧|快点?|必须)[^,.!?;，。！？；]{1,12}!{2,}", r"^(?:快点?|赶紧|马上)!{3,}",
    r"(?:i want|give me|refund me|i need|i demand)[^,.!?;]{1,40}!{2,}",
    # an impatient question shouted with "!!!" ("退款到底什么时候到！！！", "where is my refund!!!")
    r"(?:到底|究竟|凭什么|为什么还|怎么还|什么时候)[^.!?;。！？；]{0,14}!{3,}",
    r"(?:where|when|why)\b[^.!?;]{1,40}!{3,}",
)
BROKEN_PROMISE = (
    r"言而无信", r"说话不算(?:数|话)", r"出尔反尔", r"说一套做一套", r"不守信用", r"(?:毫无|没有|没)信用(?:可言)?",
    r"(?:broke|broken|breaking) (?:your|their|the|a) promise",
    r"(?:never|didn'?t|did not|don'?t) keep (?:your|their) (?:word|promises?)",
    # what was said, then what happened ("说好的顺丰，结果…", "前天说今天能到，今天又说明天")
    r"说好(?:的|了)[^.!?;。！？；]{0,20}?(?:结果|却|又|怎么还|还是没|到现在|现在都)",
    r"(?:前天|昨天|上次|之前|当时|上周|早上|刚才|明明|你们|客服)(?:客服)?(?:说|答应|承诺|保证|告诉我)(?:的|了|过)?"
    r"[^.!?;。！？；]{1,20}?(?:又说|又改口|又变|结果|却|现在又)",
    r"(?:说|答应|承诺|保证)(?:过|了)?(?:要)?(?:给我|帮我)[^.!?;。！？；]{1,15}[,，][^.!?;。！？；]{0,8}呢",
    r"(?:页面|网页|商品页|详情页|首页|广告|宣传|网上|app)(?:上)?(?:写|显示|标|说)(?:的|着|了)?[^.!?;。！？；]{1,20}?"
    r"(?:结果|却|可是|但是|现在都|怎么还)",
    r"(?:you|your (?:site|website|page|agent|staff|team|ad|store|email)|they) (?:said|told me|promised|guaranteed|"
    r"claimed|assured me)\b[^.!?]{0,60}\b(?:but|yet|now|then|today|instead|it'?s (?:been|day|now)|still|never)\b",
)
# Praise around a failure is sarcasm ("真好啊，又让我等了一个星期", "wonderful, the replacement is broken
# too"); praise alone ("great service, thanks!") is not.
SARCASM = (
    r"(?:真好|真不错|真棒|太棒了|真行|可真|厉害了|好样的|真是太好|效率真高|服务真好|质量真好)[^.!?;。！？；]{0,20}?"
    r"(?:又(?:让|是|错|坏|没|等)|坏了|错了|等了|还没|不到[^,，]{0,6}就)",
    r"(?:又(?:让|是|错|坏|没)|坏了|错了|等了)[^.!?;。！？；]{0,20}?(?:真好|真不错|真棒|太棒了|质量真好|效率真高|服务真好)",
    r"(?:wonderful|great|fantastic|brilliant|amazing|awesome|lovely|perfect|so glad|thanks so much|thanks a lot|"
    r"thank you so much)\b[^.!?]{0,50}?\b(?:broken|broke|wrong|late|never|waited|for nothing|missing|"
    r"(?<!thanks )(?<!thank you )again)\b",
)
# A loss the customer holds the company responsible for ("因为你们送错了货…", "这趟车费谁出",
# "your mistake cost me a day off work"); a plain problem report ("收到的东西坏了") is the FAQ's.
LOSS_BLAME = (
    r"(?:因为|由于|都怪|就因为|全怪|怪)你们[^.!?;。！？；]{0,15}?(?:错|晚|慢|延误|耽误|失误|问题|没|不|弄|搞|丢|坏|漏)",
    r"(?:你们|快递员?|客服|商家)[^,.!?;，。！？；]{0,10}害(?:得)?我", r"害我(?:白|多|损失|错过|耽误)",
    r"(?:损失|医药费|车费|路费|跑腿费|打车费|误工费|这个钱|这笔钱|这个责任|责任)[^,.!?;，。！？；]{0,4}谁(?:来)?(?:出|负责|承担|赔|买单)",
    r"白(?:跑|等|花|损失)了?(?:一趟|一天|半天|一上午|一下午|几百|\d+)", r"(?:总得|必须|得)有(?:个)?人(?:出来)?负责",
    r"(?:不能|不会|凭什么)(?:白白)?(?:吃(?:这个)?亏|承担)", r"白白吃亏",
    r"(?:扣|收|刷)了(?:我)?(?:[三四五六七八九十]|\d+|好几)次(?:钱|款)?",
    r"(?:your|you guys'?|your courier'?s|your driver'?s) (?:mistake|fault|error|screw[- ]?up)",
    r"(?:you|your \w+) (?:cost|have cost|has cost) me", r"(?:ruined|wrecked|spoiled) my",
    r"(?:you|u) (?:owe me|need to cover|have to cover|should cover|need to pay for|have to pay for|must pay for)",
    r"because (?:of )?(?:you|your)\b[^.!?]{0,40}\b"
    r"(?:late|wrong|mistake|lost|broke|damaged|missed|failed|didn'?t|never)",
    r"(?:you|u|they)(?: have| guys)? (?:charged|billed|debited) (?:me|my (?:card|account))[^.!?]{0,10}"
    r"(?:three|four|five|several|multiple|\d+) times",
)
COMPENSATION = (
    r"(?:我要|要求|必须|得|给我|赶紧|立刻|马上)[^,.!?;，。！？；]{0,8}(?:赔偿|赔钱|补偿)", r"赔我", r"赔钱",
    r"赔偿(?:我的?)?损失", r"(?:要求|我要|必须|给我)(?:退一赔三|假一赔十|退一赔十|假一赔三)",
    r"(?:给我|必须|要求|赶紧)道歉", r"(?:want|demand|expect|deserve|owe me) an apology",
    r"(?:want|demand|expect|deserve|require|need)(?:ing)? (?:some |a |full |proper )?compensation", r"compensate me",
    r"i demand",
)
# Naming a human agent without a request verb; an hours/contact question ("人工客服几点上班",
# "人工客服电话多少", "are your human agents available on sundays") cancels it.
HUMAN_MENTIONS = (
    r"(?:人|认)(?:工|公)客服", r"人工(?:服务(?!费)|坐席|座席)", r"^人工(?=[^\u4e00-\u9fff]*$)",
    r"人工(?:呢|在吗|在哪|在不在|吧|可以吗|行吗|好吗)", r"真人(?:客服|服务)", r"有(?:没有)?人工(?:吗|么|嘛)?",
    r"is there (?:a|any) (?:real |live )?(?:human|person|agent|people|representative)",
    r"^(?:a\s+)?(?:human|agent|representative|rep|operator|real person|live agent|live person|customer service|"
    r"live support|real human|human being|a real person|person please|human agent|live agent|"
    r"customer service (?:rep|representative|agent)|support agent)\s*[!?.]*$",
)
HUMAN_REQUESTS = (
    r"转(?:接)?(?:到)?(?:人|认)(?:工|公)",
    r"(?:找|要|叫|接|换|呼叫|请|来|给我)(?:一下|个|一个|下)?(?:你们|你们的)?(?:的)?人工"
    r"(?=$|[^\u4e00-\u9fff]|客服|服务(?!费)|坐席|来|呢|吗|啊|吧|呀|了|谢|处理|帮|跟|和|沟通|对接|聊|说|解答|回复|回答|接待|介入)",
    r"(?:找|要|转|换|接|叫|让|和|跟|同|请|来)(?:个|一个|一下)?真人(?!秀|实拍|图|照|试穿|模特|版|尺寸|大小|比例|游戏)",
    r"真人(?:来|回复|回答|处理|聊|说|呢|在吗)",
    r"(?:要|想|让我|我要)(?:跟|和|同)(?:个)?(?:真|活)?人(?:说话|聊|沟通|对话|谈|说)",
    r"(?:跟|和|同)(?:你们的?)?(?:工作人员|客服人员|真人|人工)(?:说|聊|沟通|谈|对话)",
    r"别(?:再)?(?:给我)?(?:发|回|用)(?:这些|这种)?(?:自动回复|机器人|模板)", r"(?:能|可以)(?:转)?人工(?:吗|么|嘛)",
    r"找(?:个|一个)?(?:懂|明白|专业|靠谱|会)的?人",
    r"找(?:个|一个)(?:真|活)?人(?:来)?(?:处理|跟我|和我|解决|对接|聊|说|回复|看看)", r"^真人$", r"活人",
    r"(?:找|叫|要|换|转|喊|请)(?:个|一个|一下|下)?(?:真人|人工|正经|专业)?(?:的)?(?:客服|工作人员|客服人员|专员)"
    r"(?!电话|热线|邮箱|时间|上班|下班|几点|工作)",
    r"(?:我要|我想|帮我|给我|请)联系(?:你们)?(?:的)?(?:人工|客服)", r"(?:客服|人工|真人)?人呢", r"客服呢",
    r"(?:不要|不想|不跟|不和|别用|别让|不需要|受不了)(?:跟|和|同)?(?:这个|你们的|这破)?(?:机器人|智能客服|ai|自动回复)",
    r"(?:talk|speak|chat|communicate)\s+(?:to|with)\s+(?:(?:a|an|the|some|your|ur|one of your)\s+)?"
    r"(?:real\s+|live\s+|actual\s+)?(?:human|hooman|humna|person|agent|representative|rep|operator|someone|somebody|"
    r"staff|people|customer service|customer support|support)",
    r"(?:connect|transfer|put|pass|forward|send)\s+me\s+(?:through\s+|over\s+)?(?:to|with)\s+"
    r"(?:(?:a|an|the|some|your|one of your)\s+)?"
    r"(?:real\s+|live\s+|actual\s+)?(?:human|person|agent|representative|rep|operator|someone|somebody|staff|people|"
    r"customer service|support|manager|supervisor)",
    r"transfer me(?:\s*(?:please|pls|now))?\s*[!.?]*$",
    r"(?:give|get) me (?:a |an |the |some )?(?:real |live |actual )?(?:person|human|someone|somebody|people)",
    r"(?:get|give|want|need|request|find|bring)\s+(?:me\s+)?(?:(?:a|an|the|some|your)\s+)?(?:real\s+|live\s+|actual\s+)?"
    r"(?:human|hooman|humna|agent|agnet|representative|operator|rep)",
    r"(?:get|give|want|need|request|find)\s+(?:me\s+)?(?:(?:a|an|the|some)\s+)?(?:real|live|actual)\s+(?:person|people)",
    r"(?:human|hooman|humna|agent|representative|operator|real person|live person|live agent|a person|someone real)"
    r"\s*(?:please|pls|plz|now|asap|!)",
    r"(?:not|no|stop|enough|hate|don'?t want|do not want|tired of|sick of)\s+(?:talking to |with )?"
    r"(?:a |the |this |your |these |more )?(?:bots?|robots?|machines?|chat ?bots?|"
    r"automated (?:system|replies|answers|responses))",
    r"(?:don'?t|do not) want to (?:talk|chat|speak) (?:to|with) (?:a |the |this |your )?(?:bot|robot|machine|ai)",
)
NOT_UNDERSTOOD = (
    r"听不懂", r"听不明白", r"没听懂", r"没听明白", r"(?:不|没)(?:明白|懂|理解)我(?:的意思|说的|在说)", r"你没懂",
    r"看不懂我", r"答非所问", r"文不对题", r"牛头不对马嘴", r"驴唇不对马嘴", r"鸡同鸭讲", r"不是我(?:问|想问)的",
    r"不是我(?:要|想要)的(?:答案|回答|回复)", r"我不是(?:问|说|要问)(?:这个|的这个)", r"(?:没|不)回答我的问题",
    r"没(?:有)?解决我的问题",
    r"(?:说|问|讲|重复|解释|强调)了?(?:都)?(?:好几|很多|无数|多少|[两三四五六七八九十\d]+)(?:遍|次)",
    r"又是这(?:个|句|套)", r"同样的(?:回答|回复|话)", r"翻来覆去", r"复读机", r"自动回复有什么用",
    r"(?:你|你们|机器人|客服)(?:真|太|好)?(?:有什么用|没用)", r"你在说什么", r"说的什么(?:啊|呀)?", r"到底懂不懂",
    r"(?:you|u) (?:clearly |obviously |just |still |even )?(?:don'?t|do not|dont|didn'?t|did not|aren'?t|are not|never|"
    r"can'?t|cannot)\s+"
    r"(?:understand|get it|listen|read|answer|help)",
    r"(?:that'?s|that is|this is|thats|it'?s) not what i (?:asked|meant|said|want)",
    r"not what i asked", r"i (?:already|just) (?:asked|said|told you)", r"i'?ve (?:already )?(?:asked|said|told you)"
    r"(?: this| that| it)?(?: \w+)? (?:times|before|already)", r"asked (?:you )?(?:this |that )?(?:\d+|two|three|four|"
    r"several|many|multiple|a few) times", r"(?:not|didn'?t|doesn'?t) answer(?:ing)? my question",
    r"^(?:just |please |pls )?answer (?:my|the) question", r"answer my question (?:properly|already|for once)",
    r"(?:read|look at) what i (?:wrote|said|asked)", r"(?:you|u) keep (?:saying|repeating|sending|giving)",
    r"same (?:answer|reply|response|thing) (?:again|over)", r"wrong answer",
    r"(?:that|this) (?:doesn'?t|does not|didn'?t) help", r"read my (?:message|question)",
    r"are (?:you|u) (?:even )?(?:listening|reading)", r"第(?:[二三四五六七八九十]|\d+)次(?:问|说|找|联系|咨询|来问|发)",
    r"(?:老是|总是|一直)(?:发|回|说)(?:这个|这些|同样|一样)",
    r"(?:second|third|fourth|fifth|\d+(?:nd|rd|th)) time (?:i'?m|i am|i have|i've|that i'?ve|asking|contacting|"
    r"writing)",
    r"(?:you|u|bot|the bot) (?:keep|keeps|kept) (?:sending|giving|telling|saying|repeating)",
    r"stop (?:sending|giving|telling) me", r"the same (?:answer|reply|response|message)s?",
    r"(?:you'?re|you are|u r|ur|youre) not (?:listening|reading|understanding|getting it|helping)",
)

SIGNALS: tuple[Signal, ...] = (
    Signal(Intent.THREAT_AUTHORITY, COMPLAINT, AUTHORITY_12315, "threatens to report to {t}", "威胁向{t}投诉"),
    Signal(Intent.THREAT_AUTHORITY, COMPLAINT, AUTHORITY_CONSUMER_ASSOCIATION,
           "threatens to report to the consumer association ({t})", "威胁向{t}投诉"),
    Signal(Intent.THREAT_AUTHORITY, COMPLAINT, AUTHORITY_REGULATORS, "threatens to report to regulators ({t})",
           "威胁向{t}投诉举报"),
    Signal(Intent.THREAT_AUTHORITY, COMPLAINT, AUTHORITY_POLICE, "threatens to call the police ({t})",
           "威胁报警（{t}）"),
    Signal(Intent.THREAT_AUTHORITY, COMPLAINT, AUTHORITY_EN, "threatens to report to {t}", "威胁向{t}举报"),
    Signal(Intent.THREAT_AUTHORITY, COMPLAINT, REPORT_EN, 'threatens to report the company ("{t}")',
           "威胁举报（“{t}”）"),
    Signal(Intent.LEGAL, COMPLAINT, LEGAL, "threatens legal action ({t})", "威胁采取法律行动（{t}）"),
    Signal(Intent.THREAT_PUBLIC, COMPLAINT, PUBLIC_MEDIA, "threatens to go public ({t})", "威胁曝光（{t}）"),
    Signal(Intent.THREAT_PUBLIC, COMPLAINT, PUBLIC_REVIEW, "threatens a bad review ({t})", "威胁给差评（{t}）"),
    Signal(Intent.CHARGEBACK, COMPLAINT, CHARGEBACK, "threatens a chargeback ({t})", "威胁向银行拒付（{t}）"),
    Signal(Intent.INSULT, COMPLAINT, INSULTS, 'angry, insulting: "{t}"', "客户愤怒，出言指责：“{t}”", angry=True),
    Signal(Intent.ANGER, COMPLAINT, ANGER, 'angry: "{t}"', "客户很不满：“{t}”", angry=True),
    Signal(Intent.MANAGER, COMPLAINT, MANAGER, "demands a manager ({t})", "要求找{t}", negatable=True),
    Signal(Intent.COMPLAINT, COMPLAINT, COMPLAINT_WORDS, 'wants to file a complaint ("{t}")', "要求投诉（“{t}”）",
           negatable=True),
    Signal(Intent.ULTIMATUM, COMPLAINT, ULTIMATUM, 'gives an ultimatum: "{t}"', "下最后通牒：“{t}”"),
    Signal(Intent.DEMAND, COMPLAINT, DEMAND_SHOUTED, 'makes a demand: "{t}"', "强烈要求：“{t}”", angry=True),
    Signal(Intent.BROKEN_PROMISE, COMPLAINT, BROKEN_PROMISE, 'says a promise was broken ("{t}")',
           "认为承诺没有兑现（“{t}”）", sentence=True),
    Signal(Intent.SARCASM, COMPLAINT, SARCASM, 'is sarcastic, unhappy ("{t}")', "语带讽刺，明显不满（“{t}”）",
           sentence=True),
    Signal(Intent.LOSS_BLAME, COMPLAINT, LOSS_BLAME, 'holds the company responsible for a loss ("{t}")',
           "认为损失应由公司负责（“{t}”）", sentence=True),
    Signal(Intent.UNRESOLVED, COMPLAINT, UNRESOLVED, 'says nobody is handling it: "{t}"', "反映问题无人处理：“{t}”"),
    Signal(Intent.COMPENSATION, COMPLAINT, COMPENSATION, 'demands compensation ("{t}")', "要求赔偿（“{t}”）",
           negatable=True),
    Signal(Intent.ASKED_FOR_HUMAN, HUMAN_REQUEST, HUMAN_REQUESTS, "asked for a human", "要求转人工", negatable=True),
    Signal(Intent.ASKED_FOR_HUMAN, HUMAN_REQUEST, HUMAN_MENTIONS, "asked for a human", "要求转人工", negatable=True,
           info_question_cancels=True),
    Signal(Intent.NOT_UNDERSTOOD, REPEATED_FAILURE, NOT_UNDERSTOOD, 'says the bot did not understand: "{t}"',
           "客户表示机器人没听懂：“{t}”"),
)
# Position in SIGNALS is the precedence; the long-wait rule ranks just before compensation.
_ANGER_RANK = next(i for i, s in enumerate(SIGNALS) if s.kind is Intent.ANGER)
_LONG_WAIT_RANK = next(i for i, s in enumerate(SIGNALS) if s.kind is Intent.COMPENSATION)

# A question about human agents' hours or contact details ("人工客服几点上班", "人工客服电话多少",
# "怎么联系人工客服") is a service-hours / contact question for the FAQ, not a request.
AGENT_INFO_QUESTION_MARKERS = (
    r"(?:怎么|如何|怎样)(?:才能)?联系", r"几点", r"时间", r"上班", r"下班", r"营业", r"凌晨", r"周末", r"节假日",
    r"假期", r"24小时", r"晚上有", r"夜里", r"什么时候(?:有|在|上班)",
    r"(?:business|service|support|opening|working|office|your) hours", r"hours of", r"what hours", r"what time",
    r"available (?:on|at|in|during|after|before|over|at night|tonight|24)", r"sundays?", r"saturdays?", r"weekends?",
    r"holidays?", r"at night", r"overnight", r"24/7", r"open", r"电话", r"热线", r"邮箱", r"号码", r"多少号",
    r"phone(?: number)?", r"email", r"hotline", r"number",
)

# --- negation ----------------------------------------------------------------------------------
_SENTENCE_BREAK = re.compile(r"[.!?;。！？；\n]")
_SENTENCE_QUOTE_MAX = 120
_CLAUSE_BREAK = re.compile(r"[,.!?;:，。！？；：\n]")
_ZH_NEGATION = re.compile(
    r"(?:不用|不要|不需要|不需|无需|无须|没必要|不必|不想|不打算|先不|暂时不|不再|不是|并不是|并非|没想|没打算|别|不)"
    r"(?:再|要|是|想|打算)?(?:给我|帮我|麻烦|为我|替我|去|跟|和)?(?:转接?|转到|找|叫|接|联系|麻烦|去)?(?:一下)?$"
)
_ZH_NEGATION_UNDONE = re.compile(r"(?:怎么|为什么|为啥|咋|还|到底|凭什么|能不能|可不可以|是不是)$")
_EN_NEGATION = re.compile(
    r"(?<![a-z])(?:no need (?:for|to)|don'?t|dont|do not|doesn'?t|does not|didn'?t|did not|not|never|no|without|"
    r"won'?t|will not|isn'?t|no longer)(?:\s+[a-z']+){0,2}\s*$"
)

# --- long waits --------------------------------------------------------------------------------
_ZH_NUMBER = r"(?:\d+(?:\.\d+)?|好几|十几|二十几|几十|好多|[一二两三四五六七八九十百几半]+)"
_ZH_DURATION = re.compile(
    rf"(?<!月)(?P<num>{_ZH_NUMBER})\s*(?P<more>多)?\s*(?P<unit>个多?月|半月|个?星期|个?礼拜|周(?![一二三四五六日天末])|天|日(?!期)|"
    r"个?小时|个钟头|分钟|年)(?P<tail>多)?(?P<le>了)?"
)
_EN_NUMBER = (r"\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|several|"
              r"a few|few|a couple(?: of)?|couple(?: of)?|many|multiple|over a|more than a")
_EN_DURATION = re.compile(
    rf"(?<![a-z0-9])(?P<num>{_EN_NUMBER})\s*\+?\s*(?P<unit>days?|weeks?|wks?|months?|hours?|hrs?|years?)(?![a-z])"
)
_EN_FOREVER = re.compile(r"(?<![a-z])(?:for ages|ages|forever|an eternity|months and months|weeks and weeks|"
                         r"days and days)(?![a-z])")
# Saying *you* waited ("等了", "waited", "been waiting") frames a long delay as suffering.
WAITED_MARKERS = (
    r"等了", r"等待", r"在等", r"干等", r"苦等", r"等到现在", r"waited", r"waiting", r"wait(?:ing)? for",
)
# Signs that a wait is still open; together with a frustration marker they make a complaint.
WAITING_MARKERS = (
    r"还没(?!过|超|满|到期)", r"还未", r"还是没", r"仍然?没", r"仍未", r"迟迟", r"一直没", r"都没", r"也没", r"依然没",
    r"至今没", r"没(?:有)?(?:到|收到|发|退|处理|回复|消息|动静|更新|人|解决|给|审核|通过|上门|联系)",
    r"拖(?!鞋|把|车|地|拉机)",
    r"still (?:not|no|nothing|haven'?t|hasn'?t|have not|has not|don'?t|didn'?t|isn'?t|wasn'?t|"
    r"waiting|missing|pending|processing|stuck|in transit|shows?|showing|says)", r"still\s*[!?.]*$",
    r"haven'?t (?:received|got|gotten|heard|seen)", r"hasn'?t (?:arrived|shipped|come|been|updated|moved)",
    r"not (?:yet )?(?:arrived|received|shipped|here|delivered|refunded|processed|resolved|fixed)",
    r"no (?:refund|package|parcel|reply|response|update|word|answer|news)", r"nothing",
)
FRUSTRATION_MARKERS = (
    r"整整", r"足足", r"到底", r"究竟", r"[!]{2,}", r"[?]{2,}", r"[?!]{3,}", r"等死", r"急死", r"烦死", r"受不了",
    r"遥遥无期", r"石沉大海", r"杳无音信", r"太慢", r"这么慢", r"那么慢", r"慢死", r"拖拖拉拉", r"一拖再拖", r"居然",
    r"竟然", r"天天等", r"每天都在等", r"猴年马月", r"有没有人管", r"管不管", r"搞什么", r"等了半天", r"ages",
    r"forever", r"eternity", r"seriously", r"come on", r"ridiculous", r"literally", r"whole", r"entire",
    r"how much longer", r"how many more", r"sick of", r"fed up", r"tired of", r"ugh+",
)
_ZH_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_VAGUE = {"好几": 4.0, "十几": 13.0, "二十几": 23.0, "几十": 30.0, "好多": 5.0, "几": 3.0, "半": 0.5}
_EN_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
               "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
               "several": 3, "a few": 3, "few": 3, "a couple": 2, "a couple of": 2, "couple": 2, "couple of": 2,
               "many": 4, "multiple": 3, "over a": 1, "more than a": 1}
_UNIT_DAYS = (("月", 30.0), ("星期", 7.0), ("礼拜", 7.0), ("周", 7.0), ("天", 1.0), ("日", 1.0), ("钟头", 1 / 24),
              ("小时", 1 / 24), ("分钟", 1 / 1440), ("年", 365.0), ("day", 1.0), ("week", 7.0), ("wk", 7.0),
              ("month", 30.0), ("hour", 1 / 24), ("hr", 1 / 24), ("year", 365.0))
# A still-open wait at least this long escalates even when calmly stated (README: "等了半个月").
LONG_WAIT_DAYS = 14.0

# --- repeated messages ---------------------------------------------------------------------------
REPEAT_SIMILARITY = 0.7  # character-bigram Dice coefficient above which two messages are "the same"
REPEATS_BEFORE_ESCALATION = 2  # earlier copies in history; the current message makes the third
REPEAT_LOOKBACK = 10  # only the most recent customer messages count
_MIN_REPEAT_CHARS = 3
_COMPACT_DROP = re.compile(r"[^\w\u4e00-\u9fff]+")

# --- cancel ------------------------------------------------------------------------------------
CANCEL_TOKENS: tuple[str, ...] = (
    r"不用了", r"不需要了", r"不要了", r"算了", r"算啦", r"没事了", r"没事儿?", r"没关系", r"取消(?:了)?",
    r"取消(?:人工|转人工|转接|排队|等待|请求)(?:服务)?(?:了)?", r"不排了", r"不等了", r"不用等了", r"不转了",
    r"(?:不用|不要|不需要|别)(?:再)?(?:帮我|给我)?(?:转|找|接)?(?:人工|真人)(?:客服|服务)?(?:了)?", r"不用转了",
    r"(?:问题)?(?:已经)?解决了", r"搞定了", r"我自己(?:看看|来|处理|搞定|弄|解决|找|查)(?:吧|了|一下)?",
    r"(?:返回|回到|还是问|继续问|找)机器人", r"(?:让)?机器人(?:回答|来)(?:吧)?", r"不用", r"不需要",
    r"cancel(?: (?:that|it|this|the (?:transfer|request|handoff|chat|agent)|my request|the request))?", r"never ?mind",
    r"nvm", r"forget (?:about )?it", r"no need(?: for (?:an? )?(?:agent|human|person))?(?: anymore)?",
    r"no longer needed", r"not needed(?: anymore)?",
    r"(?:i )?(?:don'?t|do not) need (?:an? )?(?:agent|human|person|help|it)"
    r"(?: anymore)?", r"(?:go )?back to (?:the )?bot", r"(?:i'?ll|i will) (?:ask|use) the bot",
    r"let the bot (?:answer|help)", r"it'?s (?:fine|ok|okay)(?: now)?", r"all good", r"no worries",
    r"i(?:'ve| have)? (?:figured|sorted) it out", r"(?:problem )?(?:solved|resolved)", r"i found it",
)
CANCEL_FILLERS: tuple[str, ...] = (
    r"谢谢(?:你|您|啦|了)?", r"好的?", r"哦+", r"嗯+", r"那(?:就)?", r"先", r"暂时", r"还是", r"我",
    r"[啊呀呢啦哈吧嘛了]+", r"人工", r"客服", r"ok(?:ay)?", r"thanks?(?: you)?", r"actually", r"oh", r"please", r"then",
    r"sorry", r"haha+", r"i think", r"my bad", r"that", r"it",
)
# "不要取消" is the opposite of a cancel, and "取消订单" / "cancel my order" is a question for the agent.
_CANCEL_BLOCKED = re.compile(
    r"(?:不要|不用|别|不|don'?t|do not|no)\s*(?:取消|cancel)|取消(?:订单|付款|支付|退货|退款|发货)|"
    r"cancel (?:my|the|an?|this) (?:order|payment|subscription|purchase|refund|return)"
)


_HAN = re.compile(r"[\u4e00-\u9fff]")


def _wrap(pattern: str) -> str:
    """Patterns without Chinese match whole words only ("sue" not in "issue"); Chinese ones anywhere."""
    return pattern if _HAN.search(pattern) else rf"(?<![a-z0-9])(?:{pattern})(?![a-z0-9])"


def _any(patterns: Sequence[str]) -> re.Pattern[str]:
    return re.compile("|".join(_wrap(p) for p in patterns))


def _combine(patterns: Sequence[str]) -> re.Pattern[str]:
    """One alternation per lexicon (one scan instead of dozens); each ``q`` group gets its own name."""
    renamed = (_wrap(p).replace("(?P<q>", f"(?P<q{i}>") for i, p in enumerate(patterns))
    return re.compile("|".join(f"(?:{p})" for p in renamed))


_COMPILED: tuple[tuple[int, Signal, re.Pattern[str]], ...] = tuple(
    (rank, signal, _combine(signal.patterns)) for rank, signal in enumerate(SIGNALS)
)
_AGENT_INFO_QUESTION = _any(AGENT_INFO_QUESTION_MARKERS)
_WAITING = _any(WAITING_MARKERS)
_WAITED = _any(WAITED_MARKERS)
_OWNERSHIP = re.compile(r"(?:买|用|穿|戴|购|入手|收到|签收)(?:了)?(?:才|都|快|已经|有)?$")
_BEEN = re.compile(r"been (?:over |more than |almost |nearly |about |like |at least )?(?:for )?$")
_FRUSTRATION = _any(FRUSTRATION_MARKERS)
_SHOUTED_WORD = re.compile(r"\b[A-Z]{3,}\b")
# A whole message in capitals ending in "!!": yelling, which is anger even without an angry word.
_YELLING = re.compile(r"[^a-z\u4e00-\u9fff]*[A-Z][^a-z\u4e00-\u9fff]*!{2,}[^a-z\u4e00-\u9fff]*")
# (is it a cancel word?, token): a message is a cancel when it reads as these tokens, one a cancel.
_CANCEL_LEXICON = tuple((True, re.compile(p)) for p in CANCEL_TOKENS) + tuple(
    (False, re.compile(p)) for p in CANCEL_FILLERS)


@dataclass(frozen=True)
class _Hit:
    rank: int
    escalation: Escalation


def _negated(text: str, start: int) -> bool:
    """True when the words just before ``start`` (same clause) negate what follows."""
    before = _CLAUSE_BREAK.split(text[:start])[-1]
    zh = _ZH_NEGATION.search(before)
    if zh is not None and not _ZH_NEGATION_UNDONE.search(before[: zh.start()]):
        return True
    en = _EN_NEGATION.search(before)
    return en is not None and "let" not in en.group(0).split() and not before[: en.start()].rstrip().endswith("why")


def _quote(original: str, offsets: list[int], start: int, end: int) -> str:
    """The customer's own characters behind normalised span [start, end)."""
    if start >= end:
        return ""
    return original[offsets[start]: offsets[end - 1] + 1].strip()


def _first_match(signal: Signal, pattern: re.Pattern[str], text: str) -> tuple[int, int] | None:
    """Span of the first non-negated match (of its ``q`` group, if the pattern has one; of the
    sentence around it for ``sentence`` signals)."""
    for match in pattern.finditer(text):
        if signal.negatable and _negated(text, match.start()):
            continue
        quoted = next((name for name, value in match.groupdict().items() if value is not None), None)
        start, end = match.span(quoted) if quoted else match.span()
        if signal.sentence:
            before = [m.end() for m in _SENTENCE_BREAK.finditer(text, 0, start)]
            after = _SENTENCE_BREAK.search(text, end)
            start, end = (before[-1] if before else 0), (after.start() if after else len(text))
            if end - start > _SENTENCE_QUOTE_MAX:  # cut at a word or clause boundary, never mid-word
                cut = max(text.rfind(" ", start, start + _SENTENCE_QUOTE_MAX),
                          text.rfind(",", start, start + _SENTENCE_QUOTE_MAX))
                end = cut if cut > start else start + _SENTENCE_QUOTE_MAX
        return start, end
    return None


def _signal_hits(text: str, original: str, offsets: list[int]) -> Iterator[_Hit]:
    """One hit per lexicon that matches, with the customer's words filled into its details."""
    info_question = _AGENT_INFO_QUESTION.search(text) is not None
    for rank, signal, pattern in _COMPILED:
        if signal.info_question_cancels and info_question:
            continue
        span = _first_match(signal, pattern, text)
        if span is not None:
            quote = _quote(original, offsets, *span)
            yield _Hit(rank, Escalation(signal.reason, signal.kind, signal.detail.format(t=quote),
                                        signal.detail_zh.format(t=quote), signal.angry))


def _en_number(raw: str) -> float:
    return float(raw) if raw[0].isdigit() else float(_EN_NUMBERS.get(raw, 1))


def _zh_number(raw: str) -> float:
    """Value of "3", "十五", "二十几", "半", "好几" (vague counts get a typical value)."""
    if raw[0].isdigit():
        return float(raw)
    if raw in _ZH_VAGUE:
        return _ZH_VAGUE[raw]
    total, current = 0.0, 0.0
    for char in raw:
        if char == "十":
            total += (current or 1) * 10
            current = 0
        elif char == "百":
            total += (current or 1) * 100
            current = 0
        elif char == "半":
            current += 0.5
        elif char == "几":
            current += 3
        else:
            current = _ZH_DIGITS.get(char, 0)
    return total + current


def _days(num: float, unit: str) -> float:
    return num * next(days for key, days in _UNIT_DAYS if key in unit)


def _gloss(days: float) -> str:
    """English gloss of a duration for the agent: "a week", "3 weeks", "2 months"."""
    if days >= 28:
        months = round(days / 30) or 1
        return "a month" if months == 1 else f"{months} months"
    if days >= 7:
        weeks = round(days / 7)
        return "a week" if weeks == 1 else ("half a month" if 14 < days < 17 else f"{weeks} weeks")
    if days >= 1:
        whole = round(days)
        return "a day" if whole == 1 else f"{whole} days"
    return "hours" if days >= 1 / 24 else "minutes"


def _long_wait(text: str, original: str, offsets: list[int]) -> Escalation | None:
    """A wait stated with frustration, or a long one the customer says they sat through.

    Rule: any duration plus a frustration marker (都…了, 整整, 到底, "!!", shouting) while the
    wait is still open; or two weeks or more that the customer says they waited (等了半个月,
    "been waiting 3 weeks"); or "waiting for ages / forever".  A calm question about a delay
    ("第六天了还没见到包裹", "still hasn't arrived after 2 weeks, is it lost?") stays with the FAQ.
    """
    frustrated = len(_SHOUTED_WORD.findall(original)) >= 2 or _FRUSTRATION.search(text) is not None
    waited = _WAITED.search(text) is not None
    still_open = waited or _WAITING.search(text) is not None
    forever = _EN_FOREVER.search(text)
    if forever is not None and waited:
        quote = _quote(original, offsets, *forever.span())
        return Escalation(COMPLAINT, Intent.LONG_WAIT, f"waited {forever.group(0).removeprefix('for ')} ({quote})",
                          f"等待已久：{quote}", False)
    longest: tuple[float, str] | None = None
    for match in _ZH_DURATION.finditer(text):
        if _OWNERSHIP.search(text, max(0, match.start() - 4), match.start()):
            continue  # 买了一个月 / 用了半年: how long they have had it, not a wait
        extra = 0.5 if match.group("more") or match.group("tail") else 0.0
        days = _days(_zh_number(match.group("num")) + extra, match.group("unit"))
        frustrated = frustrated or "都" in text[max(0, match.start() - 4): match.start()]  # 都一个星期了
        still_open = still_open or match.group("le") is not None  # 一个星期了: time is still running
        if longest is None or days > longest[0]:
            longest = (days, _quote(original, offsets, *match.span()))
    for match in _EN_DURATION.finditer(text):
        days = _days(_en_number(match.group("num")), match.group("unit"))
        still_open = still_open or _BEEN.search(text, 0, match.start()) is not None  # it's been 5 days
        if longest is None or days > longest[0]:
            longest = (days, "")
    if longest is None:
        return None
    days, quote = longest
    if not ((frustrated and still_open) or (days >= LONG_WAIT_DAYS and waited)):
        return None
    detail = f"waited {_gloss(days)}" + (f" ({quote})" if quote else "")
    return Escalation(COMPLAINT, Intent.LONG_WAIT, detail, f"等待已久：{quote or _gloss(days)}", False)


def _compact(text: str) -> str:
    return _COMPACT_DROP.sub("", normalize(text))


def _bigrams(text: str) -> set[str]:
    return {text[i: i + 2] for i in range(len(text) - 1)} or {text}


def _similar(a: str, b: str) -> bool:
    if a == b:
        return True
    left, right = _bigrams(a), _bigrams(b)
    return 2 * len(left & right) / (len(left) + len(right)) >= REPEAT_SIMILARITY


def _repeated(text: str, history: Sequence[str]) -> Escalation | None:
    """The customer sent essentially this message twice before: the bot is not helping."""
    if len(history) < REPEATS_BEFORE_ESCALATION:
        return None
    current = _compact(text)
    if len(current) < _MIN_REPEAT_CHARS:
        return None
    copies = sum(1 for earlier in history[-REPEAT_LOOKBACK:] if _similar(current, _compact(earlier)))
    if copies < REPEATS_BEFORE_ESCALATION or detect_smalltalk(text) is not None or is_cancel_request(text):
        return None
    times = copies + 1
    return Escalation(REPEATED_FAILURE, Intent.REPEATED_QUESTION, f"customer repeated the same question {times} times",
                      f"客户重复问了同一个问题{times}次", False)


def detect_escalation(text: str, history: Sequence[str] = ()) -> Escalation | None:
    """Why this message must go to a human, or None if the bot may handle it.

    ``history`` holds this conversation's earlier customer messages, oldest first.  When
    several signals fire, the most informative one is reported (authority or legal threat >
    going public > insult > anger > manager > complaint > … > human request > bot failure);
    ``angry`` is set if anger or insults appear anywhere, or if a complaint is shouted.
    """
    normalized, offsets = normalize_with_offsets(text)
    if not normalized:
        return None
    hits = list(_signal_hits(normalized, text, offsets))
    if (_YELLING.fullmatch(text.strip()) and len(_SHOUTED_WORD.findall(text)) >= 2
            and detect_smalltalk(text) is None):
        hits.append(_Hit(_ANGER_RANK, Escalation(COMPLAINT, Intent.ANGER, f'shouting: "{text.strip()}"',
                                                 f"客户大喊：“{text.strip()}”", True)))
    wait = _long_wait(normalized, text, offsets)
    if wait is not None:
        hits.append(_Hit(_LONG_WAIT_RANK, wait))
    if not hits:
        return _repeated(text, history)
    best = min(hits, key=lambda hit: hit.rank).escalation
    shouted = re.search(r"[!]{3,}", normalized) is not None or len(_SHOUTED_WORD.findall(text)) >= 2
    angry = any(hit.escalation.angry for hit in hits) or (best.reason == COMPLAINT and shouted)
    return Escalation(best.reason, best.kind, best.detail, best.detail_zh, angry)


def is_cancel_request(text: str) -> bool:
    """True when a customer waiting for an agent says they no longer need one.

    Only whole-message cancels count ("不用了", "算了不用人工了", "never mind", "back to the bot");
    "取消订单" / "cancel my order" is a new question for the agent, and "不要取消" is the opposite.
    """
    normalized = normalize(text)
    if not normalized or _CANCEL_BLOCKED.search(normalized):
        return False
    found = False
    for clause in clauses(normalized):
        labels = read_as_tokens(clause, _CANCEL_LEXICON)
        if labels is None:
            return False
        found = found or any(labels)
    return found
