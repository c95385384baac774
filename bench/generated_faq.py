"""A generated 1,000-entry Chinese product FAQ (40 products x 25 questions), for scale tests.

Real shops' FAQs look like this: hundreds of entries that differ by one product name or one
attribute, each with a single stored question. ``cases()`` asks each entry in words the KB does
not contain ("{p}能保修几年" for "{p}的保修期是多久"), so a test sees whether real questions are
answered at that size, not whether stored strings are found.
"""

from __future__ import annotations

import random

from knowledge.schema import Entry, KnowledgeBase, build_kb

PRODUCTS = (
    "电动牙刷", "吹风机", "扫地机器人", "空气净化器", "加湿器", "电饭煲", "微波炉", "烤箱", "咖啡机", "榨汁机",
    "电水壶", "洗碗机", "净水器", "电风扇", "取暖器", "台灯", "蓝牙耳机", "智能手表", "平板电脑", "笔记本电脑",
    "机械键盘", "无线鼠标", "显示器", "路由器", "移动电源", "电子秤", "按摩椅", "筋膜枪", "剃须刀", "卷发棒",
    "投影仪", "音箱", "行车记录仪", "电动车", "儿童座椅", "婴儿推车", "保温杯", "行李箱", "瑜伽垫", "跑步机",
)
# (id, stored question, a paraphrase a customer would type, answer)
ATTRIBUTES = (
    ("warranty", "{p}的保修期是多久", "{p}能保修几年", "{p}整机保修两年，凭订单号即可申请。"),
    ("weight", "{p}有多重", "{p}的重量是多少", "{p}净重约1.2公斤（不含包装）。"),
    ("colours", "{p}有哪些颜色可以选", "{p}有几种颜色", "{p}有白色、黑色和灰色三种颜色。"),
    ("cleaning", "{p}怎么清洗", "{p}脏了怎么清理", "{p}请断电后用微湿的软布擦拭，不要直接冲水。"),
    ("battery", "{p}的电池能用多久", "{p}续航多长时间", "{p}充满电可连续使用约8小时。"),
    ("size", "{p}的尺寸是多少", "{p}有多大", "{p}的尺寸请看商品详情页的规格参数表。"),
    ("material", "{p}是什么材质做的", "{p}用的什么材料", "{p}外壳为阻燃ABS材料，接触部分为食品级硅胶。"),
    ("origin", "{p}是哪里生产的", "{p}的产地在哪", "{p}由国内工厂生产，产地见包装标签。"),
    ("installation", "{p}需要自己安装吗", "{p}要不要自己装", "{p}开箱即用，需要上门安装的地区可预约师傅。"),
    ("manual", "{p}的说明书在哪里下载", "哪里能下载{p}的说明书", "{p}的电子说明书可在官网“服务-下载中心”获取。"),
    ("accessories", "{p}包装里有哪些配件", "{p}送什么配件", "{p}包装内含主机、电源线、说明书和保修卡。"),
    ("price", "{p}多少钱", "{p}的价格是多少", "{p}的价格以商品页面显示为准，活动期间有优惠。"),
    ("stock", "{p}还有货吗", "{p}缺货了吗", "{p}的库存以页面为准，缺货时可点击“到货通知”。"),
    ("returns", "{p}可以退货吗", "{p}能不能退", "{p}支持7天无理由退货，需保持包装完好。"),
    ("repair", "{p}坏了去哪里修", "{p}出故障了怎么维修", "{p}出现故障请在“我的订单”申请售后维修。"),
    ("charging", "{p}怎么充电", "{p}用什么充电", "{p}使用Type-C接口充电，建议使用原装充电器。"),
    ("waterproof", "{p}防水吗", "{p}能沾水吗", "{p}具备日常防溅水能力，请勿浸泡在水中。"),
    ("children", "{p}适合小孩用吗", "小孩可以用{p}吗", "{p}建议12岁以下儿童在成人陪同下使用。"),
    ("shipping", "{p}什么时候发货", "{p}多久能发出", "{p}付款后48小时内发货。"),
    ("gifts", "买{p}有赠品吗", "{p}送不送赠品", "{p}赠品以活动页说明为准，赠完即止。"),
    ("instalments", "{p}能分期付款吗", "{p}支持分期吗", "{p}支持花呗和信用卡分期，最多12期。"),
    ("models", "{p}的新旧型号有什么区别", "{p}新款和老款差在哪", "{p}新款升级了电机和续航，外观基本相同。"),
    ("noise", "{p}工作时声音大吗", "{p}噪音大不大", "{p}工作噪音低于45分贝，夜间也可使用。"),
    ("power", "{p}耗电吗", "{p}费不费电", "{p}额定功率较低，日常使用一个月耗电约3度。"),
    ("lifetime", "{p}能用几年", "{p}的使用寿命多长", "{p}在正常使用下设计寿命为5年以上。"),
)


def kb() -> KnowledgeBase:
    """The 1,000 entries, one stored question and a Chinese answer each."""
    return build_kb([Entry(f"{pi:02d}-{attr}", (question.format(p=product),), {"zh": answer.format(p=product)})
                     for pi, product in enumerate(PRODUCTS) for attr, question, _, answer in ATTRIBUTES])


def cases(count: int = 200, seed: int = 0) -> list[tuple[str, str]]:
    """(paraphrased question, expected entry id) for ``count`` random entries."""
    rng = random.Random(seed)
    pairs = [(pi, ai) for pi in range(len(PRODUCTS)) for ai in range(len(ATTRIBUTES))]
    picked = rng.sample(pairs, count)
    return [(ATTRIBUTES[ai][2].format(p=PRODUCTS[pi]), f"{pi:02d}-{ATTRIBUTES[ai][0]}") for pi, ai in picked]
