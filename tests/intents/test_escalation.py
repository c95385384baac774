"""Escalation detection: complaints and human requests must reach a person, routine questions must not.

The product bar (held-out set written like shared/data/eval/shop-dev-cases.jsonl): ≥ 97 % of
complaints / human requests handed off, ≤ 3 % of routine questions wrongly handed off.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intents.escalation import Escalation, detect_escalation, is_cancel_request

DEV_CASES = Path(__file__).resolve().parents[3] / "shared" / "data" / "eval" / "shop-dev-cases.jsonl"


def _dev_cases() -> list[dict[str, str]]:
    if not DEV_CASES.exists():
        pytest.skip(f"no dev cases at {DEV_CASES}")
    return [json.loads(line) for line in DEV_CASES.read_text(encoding="utf-8").splitlines() if line.strip()]


def _fires(text: str, history: tuple[str, ...] = ()) -> Escalation:
    result = detect_escalation(text, history)
    assert result is not None, f"not escalated: {text!r}"
    return result


# --- the dev set -----------------------------------------------------------------------------------

def test_every_dev_handoff_case_is_detected() -> None:
    missed = [c["text"] for c in _dev_cases() if c["expect"] == "handoff" and detect_escalation(c["text"]) is None]
    assert missed == []


def test_no_routine_or_no_answer_dev_case_is_flagged() -> None:
    flagged = [(c["text"], detect_escalation(c["text"])) for c in _dev_cases()
               if c["expect"] != "handoff" and detect_escalation(c["text"]) is not None]
    assert flagged == []


# --- held-out phrases --------------------------------------------------------------------------------
# Round 1 was written before any rule existed.  First honest run: 67/68 complaints caught (98.5 %),
# 5/60 routine flagged (8.3 %: 人工智能是什么, 人工费怎么算, 滚筒洗衣机保修多久, "is this a real person?",
# an order number containing 12345).  Round 2 was written after fixing round 1 and run before
# further tuning: 57/62 caught (91.9 %), 2/60 flagged (3.3 %: 人工客服电话多少, 主管部门备案号是多少).
# Rounds 3 and 4 deliberately used more indirect complaints ("你们能不能有点责任心", "your company is a
# joke", "I'm fuming right now"); first runs: round 3 caught 25/37 (67.6 %), 0/37 flagged; round 4
# caught 22/37 (59.5 %), 0/37 flagged.  Indirect anger is the weak spot of a lexicon approach, so
# the lexicons were widened by category (emotion words, rhetorical questions, "nobody reachable"),
# not by copying strings.  Round 5 (dev-like, after all that): 20/30 caught (66.7 %), 1/40 flagged
# (2.5 %: 怎么联系人工客服).  All five rounds pass in full now.

HELD_OUT_ROUND_1_HANDOFF = [
    "转人工", "轉人工！！", "人工服务", "我要找人工", "给我接人工客服", "能不能让真人跟我说话", "有没有活人啊",
    "叫你们经理出来", "我要见你们负责人", "找你们主管来处理", "你們這是騙子公司吧", "垃圾平台，再也不买了",
    "什么破服务", "你们这是抢钱啊", "太坑人了吧", "我要去12315投诉你们", "再不退款我就去消费者协会",
    "我要向工商局举报", "我会在微博上曝光你们", "发抖音让大家看看你们的嘴脸", "我已经找律师了", "准备去法院起诉你们",
    "等了一个星期了到底什么时候发货！！！", "都半个月了还没退款", "你听不懂吗", "答非所问", "我问了三遍了",
    "你们客服就是个摆设，投诉", "气死我了", "太差劲了", "我要投訴", "退款等了二十多天了，没人管吗",
    "Human please!!!", "I want to talk to a real person", "can i speak to someone", "LET ME TALK TO A MANAGER",
    "get me your supervisor", "this is a scam", "you guys are useless", "wtf is wrong with your service",
    "i'm going to report you to the BBB", "i will sue you", "my lawyer will contact you", "i'll post this on twitter",
    "i'm filing a chargeback", "I want to file a complaint", "still waiting after 2 weeks, this is ridiculous",
    "that's not what I asked", "I already asked this", "you don't understand me", "agent", "representative please",
    "connect me to an agent", "worst customer service ever", "rip-off", "terrible terrible service",
    "人工客服在吗？？？", "我要和真人说", "不要机器人，我要人工", "你们这是欺诈消费者", "垃圾客服😡",
    "这个问题说了好几次了，能不能找个人处理", "I've been waiting for ages and nobody replies", "give me a human now",
    "不给个说法我就一直投诉", "投诉你们", "i want my money back, you scammers", "idk why ur bot is so stupid",
]
HELD_OUT_ROUND_1_ROUTINE = [
    "你好", "谢谢", "人工智能是什么", "需要人工安装吗", "人工费怎么算", "客服几点下班", "人工客服周末上班吗",
    "退款怎么还没到账", "快递好几天没更新怎么办", "快递三天了还没到，正常吗", "退货寄回去一个星期了，退款什么时候到",
    "不用转人工了", "我不是要投诉，就是问一下退货流程", "你们有客户经理吗，我们公司想批量采购", "给领导买的礼物能开发票吗",
    "老板，这个还有货吗", "洗衣机一直报警怎么办", "能用工商银行卡付款吗", "在抖音直播间买的能退吗", "收到垃圾袋漏了一个",
    "滚筒洗衣机保修多久", "告诉我怎么改地址", "这件衣服有真人实拍图吗", "优惠券怎么用不了", "积分有什么用",
    "看不懂尺码表", "拖鞋能换码吗", "退货怎么操作", "刚买就降价了，好亏，能退差价吗", "质量有点差，能退吗",
    "my package is late", "where is my refund", "how do i return an item", "can i talk to you about my order",
    "account manager login", "is there a fee for returns", "i need a travel agent", "the box was damaged",
    "i ordered 5 days ago and it still hasn't shipped", "what are your customer service hours",
    "are human agents available at night", "HOW DO I RETURN THIS???", "WHERE IS MY ORDER", "thanks!",
    "is this a real person?", "are you a bot", "someone stole my package from my porch",
    "sorry if this is a stupid question, how do refunds work", "can i pay with ICBC card", "no need for a human, thanks",
    "my order arrived broken, what now?", "退款多久到账？？？", "能不能分期付款", "订单号123456的物流到哪了",
    "发票抬头写错了怎么办", "手机号换了怎么改", "能不能晚点发货", "我的快递被别人签收了", "I never received my package",
    "the tracking hasn't updated in 4 days",
]
HELD_OUT_ROUND_2_HANDOFF = [
    "給我轉人工客服", "人工！！！", "我要真人客服", "能找个人跟我说吗", "叫个管事的来", "你们领导呢？", "让你们店长出来",
    "你们就是一群骗子", "垃圾服务垃圾产品", "什么破玩意儿", "坑爹啊这是", "太恶心了你们", "我真的无语了", "我受够了",
    "你们这是欺负消费者", "打12315", "我要去市场监管局举报", "我会发到小红书上曝光", "给你们差评", "我会起诉的",
    "已经报警了", "再不给我退款我就去法院", "等了两个星期了还没人处理", "足足等了十天！", "我说了多少遍了", "你是复读机吗",
    "牛头不对马嘴", "你们敷衍我", "投诉！！", "我要赔偿", "强烈要求给个说法", "退款一拖再拖，到底想怎样",
    "HUMAN", "I need to speak to a human being", "pls transfer me to an agent", "can i get a real person pls",
    "i demand to speak with your manager", "supervisor now", "scammers!!!", "what a rip off", "absolutely pathetic service",
    "this is bullshit", "I'm so fed up with you guys", "this is the worst company ever", "I'm reporting you to the FTC",
    "see you in court", "I will leave a 1 star review everywhere", "my attorney will be in touch",
    "I'll dispute the charge with my bank", "how do i make a complaint", "i've asked you 3 times already",
    "you're not listening", "still waiting for my refund after 3 weeks", "been waiting forever for a reply",
    "nobody answered my emails", "this chatbot is useless 🤬", "get me a person!!", "talk to human", "humna please",
    "i wnat a refund you crooks", "customer service representative", "don't want to talk to a bot",
]
HELD_OUT_ROUND_2_ROUTINE = [
    "在吗", "您好，请问怎么退货", "人工客服电话多少", "客服热线是多少", "联系方式", "退货运费谁出", "退款到哪了",
    "为什么退款还没到", "快递到哪了", "物流一直不更新", "包裹显示已签收但我没收到", "东西坏了怎么办", "少发了一个配件",
    "能开专票吗", "积分快过期了吗", "优惠券领了用不了", "能不能便宜点", "这个质量怎么样", "是正品吗", "尺码偏大吗",
    "小孩穿什么码", "能送到学校吗", "收到的颜色不对", "我要退货", "我要退款", "我要换货", "取消订单", "订单能合并发货吗",
    "周末发货吗", "用了半个月就坏了能修吗", "三天无理由还是七天", "能加急吗", "快递员态度挺好的", "主管部门备案号是多少",
    "how long does shipping take", "can i get a refund", "i want to return this",
    "my package says delivered but it's not here", "the item is broken", "coupon code doesn't work",
    "do you ship to canada", "is this item in stock", "what size should i get", "can i change my address",
    "i was charged twice", "how do i reset my password", "is there a human agent available at night",
    "can someone tell me where my order is", "i need to talk about my order", "what is your return policy",
    "i'm not complaining, just asking about the warranty", "i ordered 10 days ago, when will it arrive?",
    "it's been a week since i returned it, when do i get my money?", "the app is not working",
    "manager of the store said i could return it", "customer support hours", "thank you so much", "bye", "Good evening",
    "how do i contact customer service",
]


HELD_OUT_ROUND_3_HANDOFF = [
    "你们这什么态度，我要找你们老板", "东西是假的，你们这是卖假货骗钱", "客服电话一直打不通，你们还想不想做生意了",
    "退款申请了二十天还没处理，我要去消协", "别给我发这些自动回复了，我要跟人说话", "你们这样做生意迟早倒闭",
    "第三次问了，到底能不能退", "这个月第三次出问题了，我要投诉", "我不管，今天必须给我解决", "你们能不能有点责任心",
    "快递员把我的包裹弄丢了，你们也不管，太过分", "等了一个多月了，货呢？？", "我要求全额退款并赔偿损失",
    "发错货还不认账，什么服务", "真是服了你们了", "我已经在黑猫投诉上发帖了", "麻烦让人工客服联系我", "请转接人工",
    "please get me a human, the bot keeps misunderstanding", "i want to speak with a supervisor about my order",
    "i'm extremely disappointed with the service", "you sent me the wrong item twice, this is ridiculous",
    "i have been waiting over a month for my refund", "if i don't get my money back i'm calling my lawyer",
    "your company is a joke", "i'm going to report this to consumer protection", "stop sending me the same answer",
    "this is the third time i'm asking", "i want a refund and an apology, this is unacceptable", "live agent please",
    "can you transfer me to a real person", "the worst shopping experience of my life", "i will never buy from you again",
    "no one has responded to my emails for a week", "operator", "talk to someone real", "i wanna speak to a human ffs",
]
HELD_OUT_ROUND_3_ROUTINE = [
    "退货的时候包装盒丢了还能退吗", "退款退到哪里了", "快递一直显示在运输中", "送货上门吗", "能指定快递公司吗",
    "收到的鞋子两只码不一样", "商品有划痕能换吗", "买错了型号怎么办", "付款失败怎么回事", "钱扣了订单没生成",
    "发票能寄纸质的吗", "退货地址是哪里", "为什么我的优惠券过期了", "积分兑换的东西怎么还没发", "会员有什么权益",
    "赠品没收到", "包裹被快递柜退回了", "怎么申请售后", "这件外套能机洗吗", "我想问一下维修要多久",
    "物流信息五天没动了，是不是丢了", "快递显示签收了但是我没收到，怎么办", "订单能修改收货人吗", "你们有实体店吗",
    "what happens if my package gets lost", "why was my payment declined", "do you price match", "my promo code expired",
    "the zipper broke after a week, is that covered", "how do i track a return", "can i exchange for a bigger size",
    "i received someone else's order", "is there a restocking fee", "what are the delivery options",
    "can i speak to you in chinese", "i need help with my order", "how long is the warranty on headphones",
]
HELD_OUT_ROUND_4_HANDOFF = [
    "我都问了好几遍了你们到底有没有人", "这已经是第二次发错货了，你们怎么回事", "一个破耳机修了一个月还没修好，气人",
    "你们客服是机器人吧，一点用都没有", "退款的事拖了这么久，给个准话", "信不信我去网上曝光你们", "我要退货！马上！立刻！",
    "你们这种商家就该被封", "我要维护我的权益", "差评差评差评", "再这样我就去315投诉", "真是无语，买个东西这么麻烦，转人工",
    "有没有能管事的人", "能不能别用机器人糊弄我", "我要人工服务，不要自动回复", "我已经打了三次电话了都没人解决",
    "你们这是诈骗吧", "我的钱呢？？？都半个月了", "你们这服务真让人寒心", "请你们负责人给我回电话",
    "I'm fuming right now", "this company is a scam, avoid", "put me through to customer service", "I need a manager, now",
    "you have wasted hours of my time", "your bot is driving me crazy, human please", "i want to escalate this complaint",
    "you guys are clowns", "i'm contacting my credit card company to reverse the charge", "enough, give me a person",
    "nobody is helping me here!!", "you are the worst", "i've been trying to reach someone for days",
    "this is beyond frustrating", "i'm not happy at all with how this was handled", "absolutely unacceptable!!!",
    "stop wasting my time",
]
HELD_OUT_ROUND_4_ROUTINE = [
    "有没有能当天到的快递", "能开个发票吗，公司报销用", "这款有没有别的颜色", "退款会退到原来的卡上吗", "快递能放门卫吗",
    "东西有点小瑕疵能便宜点吗", "下单后还能改颜色吗", "收到货发现有点色差", "我买的耳机左边没声音", "发错货了怎么办",
    "已经退货了退款要多久", "能不能帮我催一下快递", "第二件半价吗", "第一次买，怎么注册", "客服你好，我想问下保修",
    "你们的售后服务怎么样", "有什么服务保障吗", "订单显示已取消是怎么回事", "为什么要收运费", "凭证丢了还能保修吗",
    "what's your refund policy for damaged items", "how do i leave a review", "can i talk to you about a return",
    "i got the wrong size, what do i do", "my tracking number isn't working", "is my payment secure",
    "i'd like to cancel my order", "how can i check my points", "can the item be delivered on saturday",
    "what if i'm not satisfied with the product", "it's my second time ordering, do i get a discount",
    "the package was left in the rain and got wet", "my order is taking longer than expected", "can i get a receipt",
    "do you have a store in shanghai", "my friend recommended you, how do i sign up",
    "the color looks different from the picture",
]
HELD_OUT_ROUND_5_HANDOFF = [
    "我要投诉你们的快递员", "你们就是这么对待老客户的？", "叫你们上级来跟我说", "我真的很生气，东西坏了没人管",
    "这都第四天了一个回复都没有", "不给我退款我就天天打电话", "你们卖的东西有问题还不承认", "能不能找个懂的人来",
    "换人，换个人工客服", "机器人滚开，我要人工", "再发错一次我就去告你们", "什么玩意儿，质量这么差还卖这么贵",
    "你们的客服态度极差", "欺骗消费者，我会去市场监督管理局", "我要一个合理的解释", "太让人失望了",
    "I want to talk to your boss", "get a human on the line", "this service is a disgrace", "you people are incompetent",
    "I'm going to tell everyone how bad you are", "i want to lodge a formal complaint", "been on hold forever, unacceptable",
    "seriously, why is nobody answering", "I'll be contacting trading standards", "answer my question properly",
    "you clearly didn't read what I wrote", "this is my last attempt before I go to the bank", "NOT HAPPY!!!",
    "I demand a full refund immediately",
]
HELD_OUT_ROUND_5_ROUTINE = [
    "退款一般几天到", "物流停了两天了正常吗", "我收到的杯子有个缺口", "耳机少了一个耳帽", "可以改成自提吗",
    "下错单了能撤回吗", "发票抬头怎么填", "微信支付可以吗", "信用卡被扣了两次", "分三期有手续费吗",
    "优惠券为什么不能叠加", "积分能抵现吗", "买完就降价能补差吗", "空调保修几年", "吸尘器坏了去哪修",
    "人工客服晚上几点下班", "怎么联系人工客服", "账号密码忘了", "手机号不用了怎么换绑", "能寄到香港吗",
    "how much is shipping to the uk", "when will the black one be back", "does it come with a warranty card",
    "the sleeves are too short, can i exchange", "i want to send it back, it doesn't fit",
    "my refund hasn't shown up yet", "it's been 3 days and no tracking update", "can i pay in installments",
    "my discount code isn't applying", "do human agents work on holidays", "who do i contact about a damaged parcel",
    "is the product authentic", "can i get this gift wrapped", "what size is a medium in cm",
    "i moved, can i update my address", "is cash on delivery available", "can someone else sign for my package",
    "how long do refunds take to my credit card", "what's your phone number", "I was charged twice for the same order",
]
HELD_OUT_HANDOFF = (HELD_OUT_ROUND_1_HANDOFF + HELD_OUT_ROUND_2_HANDOFF + HELD_OUT_ROUND_3_HANDOFF
                    + HELD_OUT_ROUND_4_HANDOFF + HELD_OUT_ROUND_5_HANDOFF)
HELD_OUT_ROUTINE = (HELD_OUT_ROUND_1_ROUTINE + HELD_OUT_ROUND_2_ROUTINE + HELD_OUT_ROUND_3_ROUTINE
                    + HELD_OUT_ROUND_4_ROUTINE + HELD_OUT_ROUND_5_ROUTINE)


@pytest.mark.parametrize("text", HELD_OUT_HANDOFF)
def test_held_out_complaints_and_human_requests_escalate(text: str) -> None:
    _fires(text)


@pytest.mark.parametrize("text", HELD_OUT_ROUTINE)
def test_held_out_routine_questions_do_not_escalate(text: str) -> None:
    assert detect_escalation(text) is None


# --- kinds, reasons and details ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "reason", "kind"),
    [
        # human requests, colloquial / typos / traditional / mixed
        ("转人工", "human_request", "asked_for_human"), ("转人公", "human_request", "asked_for_human"),
        ("幫我轉接人工", "human_request", "asked_for_human"), ("人工客服", "human_request", "asked_for_human"),
        ("我要人工!", "human_request", "asked_for_human"), ("找客服", "human_request", "asked_for_human"),
        ("叫真人来", "human_request", "asked_for_human"), ("客服人呢", "human_request", "asked_for_human"),
        ("我不想跟机器人聊", "human_request", "asked_for_human"), ("可以转人工吗", "human_request", "asked_for_human"),
        ("怎么转人工", "human_request", "asked_for_human"), ("为什么不能转人工", "human_request", "asked_for_human"),
        ("怎么还不转人工", "human_request", "asked_for_human"), ("我要找人工 pls", "human_request", "asked_for_human"),
        ("talk to a human", "human_request", "asked_for_human"), ("REAL PERSON PLEASE", "human_request", "asked_for_human"),
        ("can I chat with customer service", "human_request", "asked_for_human"),
        ("transfer me to a live agent", "human_request", "asked_for_human"),
        ("I want an agent", "human_request", "asked_for_human"), ("no more bots", "human_request", "asked_for_human"),
        ("is there a human I can talk to?", "human_request", "asked_for_human"),
        ("请帮我转人工客服，谢谢", "human_request", "asked_for_human"), ("我要talk to a real person", "human_request", "asked_for_human"),
        # managers
        ("找你们领导来", "complaint", "manager"), ("叫你們經理出來", "complaint", "manager"),
        ("负责人呢", "complaint", "manager"), ("I want to speak to the manager", "complaint", "manager"),
        ("please escalate this", "complaint", "manager"),
        # anger and insults
        ("你们这群骗子", "complaint", "insult"), ("垃圾", "complaint", "insult"), ("辣鸡平台", "complaint", "insult"),
        ("黑店！", "complaint", "insult"), ("你们是在抢钱吗", "complaint", "insult"), ("SCAM!!!", "complaint", "insult"),
        ("you people are useless", "complaint", "insult"), ("what a ripoff", "complaint", "insult"),
        ("你们服务态度太差了", "complaint", "anger"), ("什么破快递，一个星期了", "complaint", "anger"),
        ("太过分了", "complaint", "anger"), ("真的很失望", "complaint", "anger"), ("😡😡😡", "complaint", "anger"),
        ("this is unacceptable", "complaint", "anger"), ("WTF", "complaint", "anger"),
        ("horrible experience", "complaint", "anger"), ("I'm fed up", "complaint", "anger"),
        ("WHERE IS MY ORDER!!!", "complaint", "anger"), ("你们就是这么对待顾客的？", "complaint", "anger"),
        # threats
        ("我要打12315", "complaint", "threat_authority"), ("我去消协告你们", "complaint", "threat_authority"),
        ("向工商部门投诉你们", "complaint", "threat_authority"), ("我要报警", "complaint", "threat_authority"),
        ("reporting you to the better business bureau", "complaint", "threat_authority"),
        ("I'm calling the police", "complaint", "threat_authority"),
        ("找律师告你们", "complaint", "legal"), ("法院见", "complaint", "legal"), ("I'll sue", "complaint", "legal"),
        ("lawsuit incoming", "complaint", "legal"), ("我要上微博曝光你们", "complaint", "threat_public"),
        ("发朋友圈让大家评评理", "complaint", "threat_public"), ("找媒体", "complaint", "threat_public"),
        ("going to post about this on reddit", "complaint", "threat_public"),
        ("I'll leave a negative review", "complaint", "threat_public"), ("chargeback", "complaint", "chargeback"),
        # explicit complaints, ultimatums, neglect, compensation
        ("我要投诉", "complaint", "complaint"), ("怎么投诉", "complaint", "complaint"), ("我要投述", "complaint", "complaint"),
        ("how do I complain about a seller?", "complaint", "complaint"), ("I want to make a complaint", "complaint", "complaint"),
        ("再不处理我就不客气了", "complaint", "ultimatum"), ("if you don't refund me today i will never shop here", "complaint", "ultimatum"),
        ("一直没人回复我", "complaint", "unresolved"), ("你们踢皮球", "complaint", "unresolved"),
        ("nobody has helped me", "complaint", "unresolved"), ("我要求赔偿", "complaint", "compensation"),
        ("I demand compensation", "complaint", "compensation"),
        # long waits stated with frustration
        ("等了半个月了", "complaint", "long_wait"), ("都一个星期了还没发货", "complaint", "long_wait"),
        ("整整十天了还没到", "complaint", "long_wait"), ("三天了还没发货？？？", "complaint", "long_wait"),
        ("still waiting after 2 weeks", "complaint", "long_wait"), ("been waiting for ages", "complaint", "long_wait"),
        ("I have been waiting 3 weeks for my refund", "complaint", "long_wait"),
        ("it's been 10 days!!! where is it", "complaint", "long_wait"),
        # the bot failing
        ("你听不懂吗", "repeated_failure", "not_understood"), ("答非所问", "repeated_failure", "not_understood"),
        ("我问了三遍", "repeated_failure", "not_understood"), ("不是我问的", "repeated_failure", "not_understood"),
        ("I already asked", "repeated_failure", "not_understood"),
        ("that's not what I asked", "repeated_failure", "not_understood"),
        ("you don't understand", "repeated_failure", "not_understood"),
        ("that doesn't help", "repeated_failure", "not_understood"),
    ],
)
def test_signal_kinds(text: str, reason: str, kind: str) -> None:
    result = _fires(text)
    assert (result.reason, result.kind) == (reason, kind)
    assert result.detail and result.detail_zh
    assert "\n" not in result.detail and "\n" not in result.detail_zh


@pytest.mark.parametrize(
    ("text", "detail", "detail_zh"),
    [
        ("不处理我就打12315", "threatens to report to 12315", "威胁向12315投诉"),
        ("我要去12315投诉你们！", "threatens to report to 12315", "威胁向12315投诉"),
        ("人工客服", "asked for a human", "要求转人工"),
        ("human please", "asked for a human", "要求转人工"),
        ("都一个星期了还没发货", "waited a week (一个星期了)", "等待已久：一个星期了"),
        ("找你们领导来", "demands a manager (领导)", "要求找领导"),
        ("什么垃圾东西，退钱！", 'angry, insulting: "垃圾"', "客户愤怒，出言指责：“垃圾”"),
        ("I'm reporting you to the BBB", "threatens to report to BBB", "威胁向BBB举报"),
        ("你們這是騙子", 'angry, insulting: "騙子"', "客户愤怒，出言指责：“騙子”"),
    ],
)
def test_details_quote_the_trigger(text: str, detail: str, detail_zh: str) -> None:
    result = _fires(text)
    assert (result.detail, result.detail_zh) == (detail, detail_zh)


@pytest.mark.parametrize(
    ("text", "kind"),
    [("找你們領導來", "manager"), ("換人工客服", "asked_for_human"), ("憑什麼不給退", "anger"), ("辣雞平台", "insult"),
     ("不要臉的黑店", "insult"), ("撥打12315", "threat_authority"), ("我要投訴你們", "complaint"),
     ("答非所問，聽不懂嗎", "not_understood"), ("ＨＵＭＡＮ　ＰＬＥＡＳＥ", "asked_for_human")],
)
def test_traditional_and_full_width_input(text: str, kind: str) -> None:
    assert _fires(text).kind == kind


# --- precedence and the angry flag --------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("你们这群骗子，不退款我就打12315", "threat_authority"),  # authority > insult
        ("垃圾客服，叫你们经理来", "insult"),  # insult > manager
        ("转人工，找你们领导", "manager"),  # manager > human request
        ("转人工！答非所问", "asked_for_human"),  # human request > repeated failure
        ("我说了三遍了，我要投诉", "complaint"),  # complaint > repeated failure
        ("i've been waiting three weeks and nobody helps, i want a supervisor", "manager"),
        ("this is a joke, give me a real agent", "anger"),
        ("等了一个月了，我要找律师", "legal"),
    ],
)
def test_most_informative_signal_wins(text: str, kind: str) -> None:
    assert _fires(text).kind == kind


@pytest.mark.parametrize("text", ["什么垃圾东西，退钱！", "your service is terrible", "骗子！我要去12315", "wtf, human please",
                                  "I WANT A MANAGER NOW!!!", "投诉！！！"])
def test_angry_customers_are_flagged(text: str) -> None:
    assert _fires(text).angry


@pytest.mark.parametrize("text", ["转人工", "human please", "我要投诉", "答非所问", "请帮我找一下你们主管"])
def test_calm_requests_are_not_flagged_angry(text: str) -> None:
    assert not _fires(text).angry


# --- must not fire ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text",
    [
        # routine questions that mention a problem or a delay
        "退款怎么还没到账", "快递好几天没更新怎么办", "快递好几天了还没收到", "说好三天到，现在第六天了还没见到包裹",
        "物流三天没动了", "退款申请一周了还没审核吗", "package is delayed", "refund still not received, how long does it usually take",
        "returned the item last week, still waiting on the money", "my parcel was supposed to arrive monday and it's thursday",
        "I still don't have my card after 2 weeks. What should I do?", "my order hasn't shipped yet, it's been 4 days",
        "收到的东西是坏的", "衣服质量有点差", "the quality is a bit poor, can I return it", "double charged",
        "刚买就降价了好亏", "手机太贵了想分期", "买了一个月了，到底还在不在保修期", "用了半年就坏了",
        # smalltalk and identity questions (the smalltalk layer answers them)
        "你好", "您好！", "在吗", "有人吗", "你是机器人吗", "你是真人吗", "是人工吗", "is this a real person",
        "are you a human?", "hello there", "谢谢", "thanks a lot!",
        # false friends
        "人工智能是什么", "人工湖门票", "这个需要人工安装吗", "人工费另算吗", "人工客服几点上班", "人工客服工作时间是什么时候",
        "are your human agents available on sundays", "凌晨有客服吗", "客服上班时间", "客服电话是多少", "怎么联系你们",
        "企业客户经理怎么联系", "my account manager login", "password manager app", "给领导送礼选什么好",
        "老板在吗，这个有现货吗", "洗衣机显示报警", "烟雾报警器有货吗", "工商银行信用卡能分期吗", "垃圾桶多大",
        "垃圾短信太多了，我的手机号会泄露吗", "滚筒洗衣机", "退货怎么操作", "拖鞋尺码", "告诉我运费多少",
        "真人实拍图有吗", "抖音上看到的款", "微博上说有优惠券", "是正品吗", "七天无理由退货吗", "30天价保吗",
        "tell me a joke", "write me a poem", "who won the football game", "i need a travel agent",
        "sue from accounting ordered this", "what is the issue with my order", "how do I report a missing item",
        "my package was stolen", "the delivery agent left it at the door", "can someone help me with a return",
        "sorry if this is a stupid question", "is there a fraud alert on my account", "I have no complaints, just a question",
        "差不多什么时候到", "你们会退差价吗", "质量管理体系认证", "积分有什么用", "优惠券没用上",
        "你们提供什么服务", "这是什么服务", "必须本人签收吗", "退货必须要原包装吗", "这个是假货吗", "你们假一赔十吗",
        "I am unhappy with my purchase, how do I return it?", "it kept saying declined", "connect me with an uber",
        "i'd like to hear a lawyer joke", "where can i find a divorce lawyer", "tell my bank i'm traveling",
        "how do i deal with angry red bumps", "is the sale price still valid after 2 weeks",
        "i've been using it for 2 years and it broke", "我的订单号是12345678", "多次购买有优惠吗",
        "给我解释一下运费怎么算", "怎么联系客服", "WHERE IS MY ORDER???", "THANK YOU SO MUCH!!", "HI!!",
        # negations and cancels
        "不用转人工了", "不需要人工，谢谢", "不用找人工客服了", "暂时不需要人工", "我不是要投诉", "不是投诉，问一下",
        "no need for a human", "I don't need an agent", "i'm not complaining", "not a complaint, just curious",
        "算了不用人工了", "never mind", "没事了",
    ],
)
def test_does_not_escalate(text: str) -> None:
    assert detect_escalation(text) is None


# --- repetition across the conversation --------------------------------------------------------------

def test_same_question_three_times_is_repeated_failure() -> None:
    history = ("退款什么时候到账", "你好", "退款什么时候到账？")
    result = _fires("退款什么时候到账啊", history)
    assert (result.reason, result.kind) == ("repeated_failure", "repeated_question")
    assert result.detail == "customer repeated the same question 3 times"
    assert result.detail_zh == "客户重复问了同一个问题3次"


def test_english_repeats_count_too() -> None:
    history = ("where is my order", "where is my order??")
    assert _fires("Where is my order?!", history).kind == "repeated_question"


@pytest.mark.parametrize(
    ("text", "history"),
    [
        ("退款什么时候到账", ("退款什么时候到账",)),  # asked twice: not yet
        ("退款什么时候到账", ("运费多少", "怎么退货")),  # different questions
        ("谢谢", ("谢谢", "谢谢")),  # smalltalk repeats are harmless
        ("1", ("1", "1")),  # clarify picks
        ("好的", ("好的", "好的")),
        ("不用了", ("不用了", "不用了")),
    ],
)
def test_no_repeat_escalation(text: str, history: tuple[str, ...]) -> None:
    assert detect_escalation(text, history) is None


def test_explicit_signal_beats_repetition() -> None:
    history = ("转人工", "转人工")
    assert _fires("转人工", history).reason == "human_request"


# --- cancel ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text",
    ["不用了", "不用了，谢谢", "算了", "算了不用人工了", "没事了", "不用转人工了", "取消", "取消人工", "好的不需要了",
     "问题已经解决了", "我自己看看吧", "cancel", "Cancel that", "never mind", "nevermind", "Nevermind!", "nvm",
     "back to the bot", "forget it", "no need anymore", "I don't need an agent anymore", "it's fine now, thanks",
     "算了算了", "不用人工了！", "不需要人工了谢谢"],
)
def test_cancel_requests(text: str) -> None:
    assert is_cancel_request(text)


@pytest.mark.parametrize(
    "text",
    ["取消订单", "cancel my order", "不要取消", "don't cancel", "好的", "ok", "谢谢", "还要等多久", "人工",
     "算了，我还是想退货", "我要投诉", "what's taking so long", "", "   ", "我的订单取消了吗", "please cancel my subscription"],
)
def test_not_cancel_requests(text: str) -> None:
    assert not is_cancel_request(text)


# --- engineering ------------------------------------------------------------------------------------------

def test_empty_and_symbol_only_messages() -> None:
    for text in ("", "   ", "1", "👍", "???", "！！！"):
        assert detect_escalation(text) is None


# --- complaints without keywords: broken promises, blamed losses, shouted questions, sarcasm -------
@pytest.mark.parametrize(("text", "kind", "detail"), [
    ("上周说周三发货，后来又说周五，到现在还没发", "broken_promise",
     'says a promise was broken ("上周说周三发货，后来又说周五，到现在还没发")'),
    ("说好的送货上门，结果让我自己去驿站拿", "broken_promise",
     'says a promise was broken ("说好的送货上门，结果让我自己去驿站拿")'),
    ("答应给我补发的，东西呢", "broken_promise", 'says a promise was broken ("答应给我补发的，东西呢")'),
    ("your email said it would be delivered on tuesday but it's thursday now", "broken_promise",
     'says a promise was broken ("your email said it would be delivered on tuesday but it\'s thursday now")'),
    ("就因为你们发错了颜色，我活动上没衣服穿", "loss_blame",
     'holds the company responsible for a loss ("就因为你们发错了颜色，我活动上没衣服穿")'),
    ("我请假在家等了一天，这误工费谁出", "loss_blame",
     'holds the company responsible for a loss ("我请假在家等了一天，这误工费谁出")'),
    ("because of your late delivery i missed my flight", "loss_blame",
     'holds the company responsible for a loss ("because of your late delivery i missed my flight")'),
    ("they billed my account four times this month", "loss_blame",
     'holds the company responsible for a loss ("they billed my account four times this month")'),
    ("发货到底什么时候发！！！", "demand", 'makes a demand: "到底什么时候发！！！"'),
    ("where is my package!!!", "demand", 'makes a demand: "where is my package!!!"'),
    ("服务真好，又给我发错了", "sarcasm", 'is sarcastic, unhappy ("服务真好，又给我发错了")'),
    ("fantastic, the wrong colour again", "sarcasm", 'is sarcastic, unhappy ("fantastic, the wrong colour again")'),
    ("催了你们三次了，还是没发", "unresolved", 'says nobody is handling it: "催了你们三次"'),
    ("refund me by friday or we're done", "ultimatum", 'gives an ultimatum: "or we\'re done"'),
])
def test_complaints_without_keywords_are_read_with_a_whole_sentence_for_the_agent(text: str, kind: str,
                                                                                 detail: str) -> None:
    result = _fires(text)
    assert (result.reason, result.kind, result.detail) == ("complaint", kind, detail)


def test_a_long_sentence_is_cut_at_a_word_not_in_the_middle_of_one() -> None:
    text = ("because your courier was late again i had to take another afternoon off and drive across town to the depot "
            "which closes at five and then wait in a queue for an hour")
    detail = _fires(text).detail
    quoted = detail.removeprefix('holds the company responsible for a loss ("').removesuffix('")')
    assert text.startswith(quoted) and text[len(quoted)] == " " and len(quoted) <= 120


@pytest.mark.parametrize("text", [
    "退货运费谁出", "说好的包邮吗", "页面上写的尺码准吗", "你们说的七天无理由怎么申请", "上次说的优惠券在哪领",
    "谢谢！！！", "太好了！！！收到了", "great service, thanks again!", "thanks a lot, i'll wait for the refund",
    "perfect, it arrived early", "you said i can return it within 30 days, how do i start",
    "被扣了两次钱", "i was charged twice", "how much will it cost me to ship to canada", "白色的还有货吗",
    "害怕买到假货，是正品吗", "because i'm moving, can i change my address",
])
def test_look_alikes_of_those_complaints_stay_with_the_faq(text: str) -> None:
    assert detect_escalation(text) is None, detect_escalation(text)
