"""Is a text about payments (Alipay's side) or not (the regional model's side)? Pure, bilingual, sub-millisecond.

Why lexical cues and not LiteLLM's semantic auto router: the semantic router needs the optional
``semantic-router`` extra (and its dependencies) in every proxy, a meaningful embedding model reachable at
routing time, and per-route score thresholds that move with the embedding model; its verdict cannot be
explained in a log line. The question asked here is narrow — does the text name a payment, refund, order,
dispute, an Alipay product or a Chinese financial rule — and a weighted cue list answers it
deterministically, offline and explainably (``Topic.cues`` says which words decided), in English and in
simplified and traditional Chinese. docs/routing.md has the measured accuracy.

How a text is scored:

1. Normalised: traditional characters of the cue vocabulary mapped to simplified (``_T2S``), lower-cased,
   ``snake_case`` split (tool names; ``split_identifier`` splits ``camelCase``), at most ``MAX_CHARS``
   characters read.
2. Figurative phrases are removed first (``pay attention``, ``in order to``, ``take into account``,
   ``work-life balance``, ``file transfer``, ``付出``…): "pay" in a general sense is no payment.
3. Every distinct cue term found adds its group's weight (at most twice per group); a text scoring
   ``threshold`` (default 0.8) or more is Alipay's. Strong cues (refund, 退款, Alipay, 订单号…) decide
   alone; weak ones (money, fee, seller, 元…) need company.
4. Another institution (PayPal, a bank other than through Alipay, WeChat Pay) with no Alipay cue and no
   Chinese-regulation cue is the regional model's: the question is about someone else's product.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

MAX_CHARS = 4000
DEFAULT_THRESHOLD = 0.8

# Traditional -> simplified for the characters the cues use (and common neighbours).
_T2S = str.maketrans(
    "寶單帳賬轉現餘續費發戶爭議糾紛凍結實認證銀綁還匯錢唄貨訂買賣幣額碼號購際險貸給這個麼們嗎為會時國規則"
    "監機構帶說請問題寫詩氣務業紅錯遲還開戶據優惠價値值將動關於款項稅當過運條約證訴詢報從隨總點擊",
    "宝单账账转现余续费发户争议纠纷冻结实认证银绑还汇钱呗货订买卖币额码号购际险贷给这个么们吗为会时国规则"
    "监机构带说请问题写诗气务业红错迟还开户据优惠价值值将动关于款项税当过运条约证诉询报从随总点击",
)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_SEPARATORS = re.compile(r"[_\-/]+")
_DIGIT = re.compile(r"\d")

# Phrases where a cue word is used in a general sense: removed before scoring.
_FIGURATIVE = re.compile(
    r"pay(?:s|ing|ed)? (?:close |more |no |much |some )?attention|pay(?:s|ing)? (?:a )?(?:visit|tribute|respects?|"
    r"compliments?|homage)|pay(?:s|ing)? off|paid off|it pays to|pay(?:s)? the price|"
    r"in order (?:to|for|of)|(?:alphabetical|chronological|reverse|word|sort|the right|the wrong|random|"
    r"pecking|natural|ascending|descending|executive|restraining|gag|world|social|birth) order|order by|"
    r"order of (?:magnitude|operations|the|events|words)|out of order|take[sn]? into account|account for|"
    r"on account of|work ?life balance|balance (?:sheet )?between|balance(?:d|s)? (?:diet|bike|board|training|"
    r"my (?:life|time|work))|(?:file|data|heat|style|knowledge|transfer) transfer|transfer learning|"
    r"(?:battery|phone|electric|laptop|fast|wireless) charg\w*|charg\w* (?:my|the|a) (?:phone|battery|car|laptop)|"
    r"in charge|charged (?:particle|with murder|with a crime)|free of charge|"
    r"bill gates|bill of rights|bill nye|duck'?s? bill|"
    r"(?:database|sql|db) transactions?|transactions? (?:isolation|log|rollback)|"
    r"付出|支付得起代价|代价|秩序|顺序|排序|点菜|充电|转发|转学|账号密码忘了怎么登录游戏|游戏账号|游戏账户"
)

# (pattern, weight): each distinct term a pattern finds adds its weight, at most ``_PER_CUE`` times.
_CUES: tuple[tuple[str, float], ...] = (
    # Alipay and its products
    (r"alipay|支付宝|huabei|花呗|jiebei|借呗|yu'?e ?bao|余额宝|zhima|sesame credit|芝麻信用|芝麻分|ant credit pay|"
     r"蚂蚁金服|蚂蚁集团", 2.0),
    # refunds, disputes, chargebacks, fraud
    (r"refund\w*|reimburs\w*|chargebacks?|(?:money|cash) (?:back|returned)|退款|退钱|退货|退回|退费|拒付|申诉|追回|"
     r"钱(?:能|可以)?(?:退|要|拿|还)(?:回|我|给我)|(?:能|可以|怎么|怎样|要)退(?!出|休|烧|役|学)|多收|多扣", 1.0),
    (r"disput\w*|争议|纠纷|\bappeal\w*|\bfraud\w*|\bscam\w*|诈骗|骗子|盗刷|盗用|\bunauthori[sz]ed\b|未授权|没有授权",
     0.6),
    # payments
    (r"\bpay(?:s|ing|ment|ments)?\b|\b(?:un)?paid\b|\bpayee\b|\bpayer\b|付款|支付|付钱|扣款|扣费|扣钱|"
     r"扣了|被扣|收款|收钱|付费|缴费|交费|付成功|付出去|(?:sent|send|took|taken|deducted|lost) (?:\w+ ){0,2}"
     r"(?:money|cash)|(?:send|sending) money|went through|转了钱|(?:转|付|给)了?\d+|付错|转错|扣错|"
     r"paid the wrong|wrong (?:person|account|amount)", 1.0),
    (r"\bcharg(?:e|ed|es|ing)\b|\bdebit(?:ed)?\b|\bbill(?:s|ed|ing)?\b|账单|对账|\binvoices?\b|"
     r"\breceipts?\b|小票|凭证|\bspend(?:ing)?\b|消费", 0.6),
    (r"发票|fapiao", 1.0),
    (r"transactions?|\btrade ?no\b|交易|流水", 1.0),
    # orders, shops
    (r"\border(?:s|ed)?\b|\bcheckout\b|\bpurchas\w*|购买|买的|网购|商品|\btrades?\b|\bsellers?\b|\bbuyers?\b|"
     r"\bshops?\b|\bstores?\b|卖家|买家|店家|店铺|发货|\bshipped\b|\bdeliver\w*|收货|\breturn(?:s|ed)?\b|"
     r"\bstuff\b|东西", 0.4),
    (r"order (?:number|no|id|status)|order #?\d+|(?:my|this|our|your|unpaid|paid) orders?\b|out trade no|"
     r"订单|下单|交易号", 1.0),
    # money movement and accounts
    (r"\btransfer(?:s|red)?\b|remittance|\bwire\b|\bbalance\b|\bpending\b|\bprocessing\b|处理中|审核", 0.5),
    (r"转账|汇款|余额|(?:my|account|wallet|alipay|remaining) balance", 1.0),
    (r"\bwithdraw\w*|提现|\btop ?up\b|\btopped up\b|充值|到账|入账|\bwallet\b|钱包", 0.8),
    (r"\bfrozen\b|\bfreez\w*|冻结|\blimit(?:s|ed)?\b|\bcap\b|限额|额度|实名认证|real[- ]name|\bkyc\b|绑卡|"
     r"银行卡|bank card|\bcards?\b|信用卡|credit card|\baccounts?\b|账户", 0.5),
    (r"\bmerchants?\b|商户|商家|\bfees?\b|手续费|费率|\bqr ?code\b|收款码|付款码|收钱码|二维码|扫\w{0,3}码|"
     r"\bscann?ed\b|\bcashiers?\b|收银|\bpos\b|\bdeposits?\b|押金|预授权|pre ?authori[sz]\w*|\bcoupons?\b|"
     r"\bvouchers?\b|cashback|优惠券|红包|返现", 0.6),
    (r"settlements?|结算", 0.6),
    (r"installments?|分期|还款|repay\w*|\bloan\b|借款|利息|interest rate|逾期|overdue", 0.6),
    (r"\bmoney\b|\bcash\b|\bbucks\b|\bdollars?\b|\byuan\b|\brmb\b|\bcny\b|[¥$]\s?\d|人民币|\d\s?元|\d\s?块|钱", 0.5),
    # Chinese financial rules
    (r"pboc|people'?s bank of china|中国人民银行|人民银行|央行|购汇|结汇|外汇管理|外汇|forex|foreign exchange|"
     r"exchange rates?|汇率|anti[- ]money[- ]laundering|\baml\b|反洗钱|跨境|境外消费|cross[- ]border|支付牌照|"
     r"payment licen[cs]e|金融监管|nfra|cbirc|银保监|证监会|csrc|征信|credit report", 1.0),
    (r"(?:china|chinese|mainland|prc)\W+(?:\w+\W+){0,3}(?:financ\w*|bank\w*|currency|tax\w*|regulat\w*|"
     r"rules?|law)|(?:financ\w*|bank\w*|currency|regulat\w*)\W+(?:\w+\W+){0,3}(?:in|of) (?:china|the prc|mainland)|"
     r"(?:china|chinese) (?:\w+ )?(?:have|has|set|require)s? for (?:\w+ ){0,2}(?:currency|accounts?|payments?)",
     1.0),
)
_PER_CUE = 2
_CUE_PATTERNS = tuple((re.compile(pattern), weight) for pattern, weight in _CUES)

# Someone else's product: a question about it is not Alipay's, unless Alipay or a Chinese rule is named too.
_OTHER_INSTITUTION = re.compile(
    r"\b(?:paypal|venmo|zelle|stripe|revolut|wise|apple pay|google pay|samsung pay|klarna|chase|hsbc|barclays|"
    r"wells fargo|bank of america|citi(?:bank)?|santander|monzo|n26|capital one|american express|amex|"
    r"wechat ?pay|steam|amazon|ebay|app store|google play|other bank|another bank)\b|"
    r"微信支付|微信红包|财付通|云闪付|招商银行|工商银行|建设银行|农业银行|中国银行|交通银行|浦发|汇丰|滙丰|花旗|渣打|"
    r"其他银行|别的银行"
)
_ALIPAY_BRAND = re.compile(_CUES[0][0])
_CHINA_RULES = re.compile(_CUES[-2][0] + "|" + _CUES[-1][0])


@dataclass(frozen=True)
class Topic:
    """The verdict on one text: ``alipay`` when ``score >= threshold``; ``cues`` are what matched."""

    alipay: bool
    score: float
    cues: tuple[str, ...]
    other_institution: bool = False


def split_identifier(name: str) -> str:
    """``createPayment`` -> ``create Payment``: a tool name's words, for ``classify``."""
    return _CAMEL.sub(" ", name)


def normalize(text: str) -> str:
    """Simplified, lower-case, tool-name separators as spaces, figurative phrases removed."""
    text = text[:MAX_CHARS].translate(_T2S).lower()
    text = _SEPARATORS.sub(" ", text)
    return _FIGURATIVE.sub(" ", text)


@lru_cache(maxsize=8)
def _extra_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(normalize(term).strip()) for term in terms if normalize(term).strip()))


def classify(text: str, threshold: float = DEFAULT_THRESHOLD, extra_terms: tuple[str, ...] = ()) -> Topic:
    """Score ``text`` (see the module docstring). Empty text scores 0: the regional model's.

    ``extra_terms`` (setting ``extra_terms``): the operator's own words for Alipay's side — product names,
    a shop's brand — each deciding alone, like "Alipay"."""
    plain = normalize(text or "")
    score = 0.0
    cues: list[str] = []
    if extra_terms:
        found = list(dict.fromkeys(m.group(0) for m in _extra_pattern(extra_terms).finditer(plain)))[:_PER_CUE]
        score += max(threshold, 1.0) * len(found)
        cues.extend(found)
    for pattern, weight in _CUE_PATTERNS:
        found = list(dict.fromkeys(match.group(0).strip() for match in pattern.finditer(plain)))[:_PER_CUE]
        score += weight * len(found)
        cues.extend(_DIGIT.sub("#", cue) for cue in found)  # cues go to logs: no order or amount digits
    other = bool(_OTHER_INSTITUTION.search(plain))
    ours = _ALIPAY_BRAND.search(plain) or (extra_terms and _extra_pattern(extra_terms).search(plain))
    if other and not ours and not _CHINA_RULES.search(plain):
        return Topic(alipay=False, score=round(score, 2), cues=tuple(cues), other_institution=True)
    return Topic(alipay=score >= threshold, score=round(score, 2), cues=tuple(cues))
