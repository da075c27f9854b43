"""The handoff safety net: rules in both languages that catch theft, compliance and requests for a
person even when the classifier is unsure or wrong. A missed theft case costs a user their funds,
so these rules err on the side of a person looking at it.

Rules describe something that *happened to the user* ("my account was hacked", "不是我操作"); a
question *about* security ("how do I stop my account being hacked?") is left to the classifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain import foreign_subject, prompt_at_bot
from bot.prefilter import Rules, fold
from intents.components._zh_variants import to_simplified

_F = re.I | re.S


def _rx(*parts: str) -> Rules:
    """The rules as one alternation, each searched only when the text can start a match of it
    (`bot.prefilter`)."""
    return Rules(*parts, flags=_F)


_SECRET_WORDS = (
    r"(?:password|passcode|seed(?:\s*phrase)?|recovery\s*phrase|mnemonic|private\s*key|2fa(?:\s*code)?|"
    r"authenticator|google\s*auth\w*|api\s*(?:key|secret)|secret\s*key|12\s*words|24\s*words|"
    r"verification\s*code|sms\s*code|\[REDACTED:\w+\])"
)
_ASSETS = r"(?:funds?|coins?|money|balance|assets?|crypto|tokens?|btc|eth|usdt|usdc|bnb|sol|xrp|trx|bitcoin|ether|savings|everything|all\s+my\s+\w+)"

THEFT_EN = _rx(
    r"\b(?:hack(?:ed|er|ers)?|compromised|breached)\b.{0,40}\b(?:my|our)\b.{0,20}\b(?:account|wallet|funds?)\b",
    r"\b(?:my|our)\s+(?:\w+\s+){0,2}(?:account|wallet|email|phone|binance|api\s*key)s?\b.{0,25}\b(?:was|were|got|has\s+been|have\s+been|is|been|being)\s+(?:\w+\s+)?(?:hacked|hackd|hacket|compromised|stolen|stealed|stoled|stollen|taken\s+over|breached|hijacked|drained|accessed)",
    r"\b(?:i(?:'ve|\s+have)?|we)\s+(?:been|got|was|were|just\s+got)\s+(?:hacked|scammed|phished|robbed|drained|sim[\s-]*swapped)",
    r"\bsome(?:one|body)\b.{0,30}\b(?:logged|log(?:ged)?\s*in|signed\s*in|accessed|got\s+into|broke\s+into|hacked|stole|took|withdr[ae]w|withdrawing|transferred|transferring|changed|(?:is|was)\s+(?:moving|selling|sending|draining|emptying))\b",
    r"\b(?:i|we)\s+(?:did\s*n[o']?t|didnt|never|did\s+not|have\s*n[o']?t|haven't)\s+(?:\w+\s+){0,2}(?:make|made|do|did|authori[sz]e|authori[sz]ed|request|requested|place|placed|initiate|initiated|approve|approved|send|sent|withdraw|log\s*in|login|trade)\b",
    r"\bnone\s+of\s+(?:these|those|them|the|this)\b[^.?!]{0,60}\bby\s+me\b|\b(?:never|not)\s+(?:opened|placed|made|initiated|authori[sz]ed|approved|done)\s+by\s+me\b",
    r"\bnot\s+(?:made\s+)?by\s+me\b|\bwasn'?t\s+me\b|\bwithout\s+my\s+(?:permission|consent|knowledge|authori[sz]ation)\b",
    r"\b(?:withdrawals?|transactions?|trades?|transfers?|orders?|logins?|sessions?|devices?|api\s*keys?)\b.{0,30}\b(?:is|was|are|were)\s*(?:n'?t|not)\s+(?:mine|me|from\s+me|by\s+me)\b",
    r"\b(?:i|we)\s+(?:did\s*n[o']?t|didnt|never|did\s+not)\s+(?:\w+\s+){0,2}(?:add|added|change|changed|set|enable|enabled|disable|disabled|reset|create|created|open|opened|approve|approved|bind|bound|link|linked)\b",
    r"\bpassword\b.{0,60}\b(?:breach(?:ed)?|leak(?:ed)?|hacked|compromised|exposed|dumped)\b",
    r"\blog(?:ged)?[\s-]?in\b.{0,40}\bfrom\b.{0,40}\b(?:i'?m\s+in|i\s+am\s+in|i\s+live\s+in|i'?ve\s+never|i\s+have\s+never|never\s+been)\b",
    r"\bunauthori[sz]ed\s+(?:\w+\s+)?(?:withdrawals?|logins?|access|trades?|transactions?|transfers?|orders?|activity|changes?)",
    r"\bsim[\s-]*(?:card\s+)?(?:swap|swapped|hijack|jacking|ported)\b|\bport(?:ed)?[\s-]*out\b.{0,30}\bnumber\b|\b(?:phone|mobile)\s+number\b.{0,30}\b(?:hijacked|ported|transferred|taken)\b",
    rf"\b(?:my|all\s+(?:of\s+)?my|the)\s+(?:\w+\s+){{0,2}}{_ASSETS}\b.{{0,30}}\b(?:are|is|were|was|have\s+been|has\s+been|got|just)?\s*(?:gone|missing|stolen|disappeared|drained|vanished|taken|emptied|zero|withdrawn\s+without|\b0[.,]0{{3,}}(?![.,]?\w))",
    r"\b(?:balance|wallet|account|funds)\b.{0,20}\b(?:went|dropped|fell|is\s+now|now\s+(?:shows?|says?))\s+(?:down\s+)?(?:to\s+)?(?:0|zero|nothing)\b",
    rf"\b(?:stole|stolen|drained|emptied|wiped|cleaned\s+out|swept)\b.{{0,30}}\b(?:my|our)\b.{{0,20}}\b(?:{_ASSETS}|account|wallet)",
    rf"\b(?:i|we)\s+(?:accidentally\s+|mistakenly\s+)?(?:entered|typed|gave|shared|sent|leaked|posted|exposed|revealed|told|showed|pasted|imported|put\s+in)\s+(?:[\w'-]+[,/&]?\s+){{0,5}}{_SECRET_WORDS}",
    rf"\b(?:i|we)\b[^.!?]{{0,80}}\band\s+(?:then\s+)?(?:entered|typed|put\s+in|pasted|imported|filled\s+in)\s+(?:[\w'-]+[,/&]?\s+){{0,5}}{_SECRET_WORDS}",
    # a login / device the user does not own ("new device login from a windows pc, i only use an iphone")
    r"\b(?:new|unknown|unrecogni[sz]ed|strange|unfamiliar|suspicious|foreign)\s+(?:device|log[\s-]?in|sign[\s-]?in|ip|location|session|browser)s?\b.{0,100}\b(?:i\s+only\s+(?:use|have|own)|(?:is|was)\s*(?:n'?t|not)\s+mine|not\s+(?:mine|me)|i\s+(?:do\s*n[o']?t|dont|never)\s+(?:own|have|use|recogni[sz]e|know)|never\s+(?:used|owned|had|been\s+to))",
    # recovery mail going somewhere else ("the reset link goes to an address I don't recognise")
    r"\b(?:e-?mail|phone|number|reset|recovery|verification|security)\b.{0,60}\b(?:address|e-?mail|number|phone)\s+(?:that\s+)?i\s+(?:do\s*n[o']?t|dont|never)\s+(?:recogni[sz]e|know|own|use|have|set)",
    rf"\b(?:my|our)\s+{_SECRET_WORDS}\s+(?:was|were|got|has\s+been|have\s+been|is|are)\s+(?:\w+\s+)?(?:leaked|exposed|stolen|compromised|shared|published|changed|reset|disabled|removed)",
    r"\b(?:email|e-mail|phone(?:\s+number)?|mobile|2fa|authenticator|password|withdrawal\s+address|whitelist)\b.{0,30}\b(?:changed|reset|removed|disabled|added|replaced)\b.{0,40}\b(?:not\s+me|wasn'?t\s+me|i\s+didn'?t|i\s+did\s+not|without\s+me|by\s+someone|never\s+(?:did|asked|requested))",
    r"\b(?:scam(?:med)?|phish(?:ed|ing)?|fake\s+(?:support|site|website|app|admin|agent|exchange))\b.{0,60}\b(?:took|stole|lost|drained|sent|gave|paid|transferred|emptied)\b",
    r"\b(?:lost|loss\s+of)\b.{0,30}\b(?:to|in|from)\s+(?:a\s+)?(?:scam|scammer|hacker|phishing|fake)",
    r"\b(?:logged\s+in|signed\s+in|entered|typed|put\s+in)\b.{0,60}\b(?:turned\s+out|realized|realised|found\s+out|later\s+saw|noticed)\b.{0,30}\b(?:fake|phishing|scam|not\s+(?:your|the\s+real))",
    # scams told as a story: "it was a scam", "pay a 20% tax before I can withdraw", "he got me to move 3 BTC"
    r"\b(?:it'?s|it\s+was|that\s+was|this\s+was|they\s+were|turned\s+out\s+to\s+be)\s+(?:all\s+)?(?:a\s+)?(?:scam|fraud|rug\s*pull|ponzi)\b(?!\s+(?:money|funds?|coins?|payments?|usdt))",
    r"\b(?:pay|paid)\b.{0,25}\b(?:tax|fee|deposit|unlock\w*)\b.{0,25}\bbefore\b.{0,20}\b(?:withdraw\w*|take|get|cash)",
    r"\b(?:got|convinced|persuaded|told)\s+me\s+to\s+(?:move|send|transfer|deposit|invest|put)\b",
    # a charge or transaction the user disputes: "this charge is bs", "a false charge on my account"
    r"\b(?:charges?|transactions?|debits?|withdrawals?|transfers?|trades?|payments?)\b[^.?!]{0,30}\b(?:is|are|was|were|looks?|seems?)\s+(?:\w+\s+)?(?:bs|bogus|fake|fraud(?:ulent)?|false|not\s+(?:mine|real|legit))\b",
    r"\b(?:false|fake|bogus|fraudulent|unknown|unrecogni[sz]ed|mystery)\s+(?:charges?|transactions?|debits?|withdrawals?|transfers?|payments?)\b",
    r"\b(?:charges?|transactions?|debits?|withdrawals?|transfers?|payments?)\b.{0,40}\b(?:i|we)\s+(?:do\s*n[o']?t|dont|do\s+not|did\s*n[o']?t|can\s*n[o']?t|cannot)\s+recogni[sz]e\b",
    # the user wants the account stopped now: "please stop my account", "block my account immediately"
    r"\b(?:stop|block|lock|suspend)\s+(?:my|our)\s+(?:whole\s+|entire\s+)?(?:account|acc|acct)\b\s*(?:(?:now|immediately|right\s+now|asap|please|urgently|at\s+once)\b|[.!]*$)",
    # the whole message is the alarm: "hacked 🚨", "got drained!!"
    r"^\W*(?:(?:i'?m|i\s+am|i\s+was|i\s+got|i'?ve\s+been|got|been|was|account|acc|acct|wallet|funds?)\s+)?(?:hacked|stolen|drained|compromised|robbed|scammed|rugged)\W*$",
)

THEFT_ZH = _rx(
    r"被盗|被黑|盗号|被偷|被人偷|被入侵|被攻击|被劫持|被洗劫|被掏空|被清空|被人转走|被转走|被提走|被人提|被划走",
    r"不是我(本人)?(操作|做的|提的|下的|登录|登的|买的|卖的|转的|改的|授权)|非本人|并非本人|我(并)?没有?(操作|授权|提现|提币|下单|交易|登录|转账|改过?)",
    r"(资金|币|钱|资产|余额|USDT|BTC|ETH|账户里?的?.{0,6})(全|都|突然|莫名其?妙?地?)?.{0,4}(不见|没了|消失|少了|丢了|被转|归零|清零)",
    r"有人(登录|登陆|登入|进入|盗|动|转|提|改|用)了?.{0,10}(我|账|账户|账号|钱包)|异地登录|陌生设备登录|未知设备",
    r"被骗|受骗|上当|诈骗.{0,12}(损失|被|转|骗)|钓鱼(网站|链接|邮件|短信).{0,20}(输入|填|登录|点|泄露|被盗|转)|假(客服|官网|网站|APP).{0,20}(转|骗|输入|给了|泄露|被盗)",
    r"(泄露|泄漏|外泄|暴露|告诉了?别人|发给了?(别人|对方|客服|他|她)|给了?(别人|对方|他|她))了?.{0,8}(助记词|私钥|密码|验证码|API|密钥|谷歌验证)",
    r"(助记词|私钥|密码|API\s*密钥|密钥|谷歌验证|验证码).{0,8}(泄露|泄漏|外泄|被盗|被人知道|被别人知道|发给了|给了别人)",
    r"SIM\s*卡?.{0,6}(被|盗|劫持|补办|复制)|手机号.{0,8}(被盗|被劫持|被转|被补办|被过户)|被补卡",
    r"(邮箱|手机号?|绑定手机|谷歌验证|2FA|双重验证|提币地址|白名单|登录密码|资金密码).{0,10}(被|遭)(人)?(改|换|修改|更改|解绑|关闭|重置|删除|添加)",
    r"未经(我的?)?(授权|允许|同意)|盗刷|盗提|盗转",
    r"我.{0,4}(都|也)?没(有)?(改|修改|动过|操作|设置|添加|申请|绑定|更改|授权)",
    r"我(真的|从来|从|根本|压根)?(就)?没(有)?(开|下|买|卖|做|提|转|借|点|碰|登)过",
    r"(莫名其妙|无缘无故|平白无故)(地|的)?.{0,8}(开了|下了|多了.{0,6}(单|仓)|被(提|转|卖|买|平|划))",
    r"有人(在|正在)(提|转|登|操作|卖)|(快|先|请|赶紧|马上)?(帮我|给我)(先)?(冻结|锁定?|封)(一下)?(我的)?(账户|账号|号)",
    r"中了?(木马|病毒|恶意软件)|(电脑|手机)中毒",
    r"(登录|登入|输入|填写?|填了)(了)?.{0,24}发现.{0,6}(不是你们|是假的?|是钓鱼|是骗)",
    r"(提币|提现|转账|转出|转走|提走|转了|提了).{0,10}(陌生|不认识|未知|别人)的?地址|(助记词|私钥|密码|密钥|API|验证码|谷歌验证).{0,12}(发到|发在|贴到|贴在|晒|上传|传到|截图).{0,8}(群|网上|github|推特|论坛|朋友圈|公开|电报|微信)",
    r"(这笔|那笔|这个|这些).{0,6}(提现|提币|交易|转账|订单|登录).{0,6}不是我",
    # a charge or transaction the user disputes: "这笔交易是假的", "有一笔扣款我不认识"
    r"(这笔|那笔|一笔|几笔|这些|这几笔).{0,8}(交易|扣款|扣费|转账|提币|提现|订单|成交|记录).{0,8}(是假的|假的|虚假|伪造|不是我|不认识|来路不明|莫名其妙)",
    r"(扣款|扣费|交易|转出|提币|提现).{0,6}我?(完全|根本|都)?不认识",
)

# Account / funds status (frozen, restricted, on hold) and specific compliance matters (AML, police,
# sanctions, source of funds): a fake "your account will be suspended" text only has the first kind.
_COMPLIANCE_EN_STATUS = (
    r"\b(?:account|funds?|assets?|balance|withdrawals?|deposits?|wallet)\b.{0,30}\b(?:frozen|freezed|froze|restricted|suspended|blocked|seized|held\s+for\s+review|on\s+hold|under\s+review|disabled|banned|closed\s+by\s+you|locked\s+by\s+(?:you|compliance|risk))\b",
    r"\b(?:froze|frozen|freeze|restricted|suspended|banned)\b.{0,20}\b(?:my|our)\s+(?:account|funds?|assets?|withdrawals?)",
    # "about my frozen funds" (not "my locked savings": a product's name)
    r"\b(?:my|our)\s+(?:frozen|freezed|restricted|suspended|banned|blocked|seized)\s+(?:account|acc|acct|funds?|assets?|balance|withdrawals?|money|coins?|usdt|btc|eth)\b",
    r"\b(?:deposits?|withdrawals?|funds?|transfers?|assets?|balance|account)\b.{0,40}\b(?:under\s+review|on\s+hold|held|restricted|restrictions?)\b",
    r"\b(?:notice|message|banner|warning)\b.{0,30}\brestrict",
)
_COMPLIANCE_EN_SPECIFIC = (
    r"\b(?:aml|anti[\s-]*money[\s-]*laundering|kyt|risk\s+(?:control|review|team)|compliance\s+(?:review|check|team|hold))\b",
    r"\b(?:iran|iranian|north\s+korea|dprk|cuba|cuban|syria|syrian|crimea|donetsk|luhansk)\b",
    r"\b(?:police|law\s+enforcement|court\s+order|subpoena|warrant|prosecutor|fbi|investigat(?:or|ion)\s+(?:request|agency)|seizure\s+order|legal\s+request)\b",
    r"\bsanction(?:s|ed)?\b|\bofac\b|\bembargo",
    r"\b(?:source|proof)\s+of\s+(?:funds?|wealth|income)\b",
    r"\b(?:request(?:ed|s|ing)?|ask(?:ed|ing|s)?|need|want|provide|send|upload)\b.{0,40}\b(?:bank\s+statements?|pay\s*slips?|salary\s+slips?|tax\s+returns?|employment\s+letter)\b",
)
COMPLIANCE_EN = _rx(*_COMPLIANCE_EN_STATUS, *_COMPLIANCE_EN_SPECIFIC)
COMPLIANCE_EN_STATUS = _rx(*_COMPLIANCE_EN_STATUS)
COMPLIANCE_EN_SPECIFIC = _rx(*_COMPLIANCE_EN_SPECIFIC)

_COMPLIANCE_ZH_STATUS = (
    r"冻结|被封|封号|封禁|封了|限制(交易|提现|提币|登录|账户)|账户(受限|被限制|异常被限|停用)|资金(被扣|被冻|被锁|被限制)|暂停(交易|提现)",
)
_COMPLIANCE_ZH_SPECIFIC = (
    r"风控|风险控制|风险审核|反洗钱|\bAML\b|KYT|合规(审查|审核|部门|团队)",
    r"警方|警察|公安|法院|司法|检察|协查|调证|执法",
    r"制裁|OFAC|伊朗|朝鲜|古巴|叙利亚|克里米亚",
    r"资金来源(证明)?|收入证明|财富来源",
)
COMPLIANCE_ZH = _rx(*_COMPLIANCE_ZH_STATUS, *_COMPLIANCE_ZH_SPECIFIC)
COMPLIANCE_ZH_STATUS = _rx(*_COMPLIANCE_ZH_STATUS)
COMPLIANCE_ZH_SPECIFIC = _rx(*_COMPLIANCE_ZH_SPECIFIC)

# words after "call me" / "call you" that make it a request to be phoned, not a name
_CALL_WHEN = r"(?:back|asap|now|please|today|tomorrow|tonight|later|soon|urgently|immediately|right|at|on|when|about|in|directly)\b"

HUMAN_EN = _rx(
    r"\b(?:talk|speak|chat|connect|transfer|put)\s+(?:me\s+)?(?:to|with|through\s+to)\s+(?:a|an|the|some|your|real|live|actual)?\s*(?:real\s+|live\s+|actual\s+)?(?:(?:customer\s+)?(?:support|service|care)\s+)?(?:human|person|people|agent|representative|rep|manager|supervisor|operator|staff|someone|somebody|customer\s+service)",
    r"\b(?:real|live|actual)\s+(?:human|person|agent|people)\b|\bhuman\s+(?:agent|support|being|please)\b",
    r"\b(?:need|want|get)\s+(?:a|an|to\s+talk\s+to\s+an?)?\s*(?:human|agent|manager|supervisor)\b",
    r"\b(?:i\s+)?(?:need|want)\s+(?:a|an|some)\s+(?:real\s+|actual\s+|live\s+)?(?:person|someone|somebody|staff\s+member|rep)\b",
    r"\bi\s+(?:expect|demand|want|need)\b.{0,40}\b(?:refund(?:ed)?|money\s+back|compensat\w*|reimburs\w*|made\s+whole)\b|\b(?:sue|lawsuit|my\s+lawyer|attorney|legal\s+action|small\s+claims)\b",
    # "call me back", not "call me mike from now on" / "call me a cab" (a name, a ride); "a phone call",
    # not "make a phone call to mom"; "can I call you", not "I'll call you jarvis"
    rf"\bcall\s+me\b(?!\s+(?:an?\s+\w+|(?!{_CALL_WHEN})[a-z]+(?:\s+from\s+now(?:\s+on)?|\s+instead)?\s*[.!]*$))",
    r"\bphone\s+call\b(?!\s+(?:to|with)\s+(?:my|mom|mum|dad|\w+\s+(?:at|on)\b))|\bphone\s+support\b|\bcall\s+back\b",
    rf"(?<!what\s)(?<!should\s)\b(?:i(?:'d|'ll)?|we)\s+(?:\w+\s+){{0,2}}call\s+you\b(?!\s+(?!{_CALL_WHEN})[a-z]+)|\bcall\s+you\s+(?:guys|people)\b",
    r"\bescalat(?:e|ed|ing|ion)\b|\b(?:report(?:ing)?|complain(?:ing)?\s+about)\s+(?:your|the|an?|one\s+of\s+your)\s+(?:support\s+|customer\s+service\s+)?(?:agent|staff|employee|rep|representative|support\s+person)\b",
    r"\b(?:have|get|send|arrange\s+for)\s+(?:someone|somebody|a\s+(?:person|human|staff\s+member|rep(?:resentative)?)|an\s+agent)\b.{0,30}\b(?:contact|call|email|message|reach\s+out\s+to|get\s+(?:in\s+touch|back)\s+(?:with|to))\s+me\b",
    r"\b(?:formal|official)\s+complaint\b|\b(?:file|lodge|make|submit)\s+a\s+complaint\b|\bcompensat(?:e|ion)\b|\breimburse",
    # "give me my money back" (not "can you give me my money back if I used the wrong network?")
    r"(?<!you\s)\bgive\s+(?:me\s+)?(?:back\s+)?my\s+(?:money|funds|coins|crypto|usdt|btc|eth|deposit)(?:\s+back)?\b(?<=back\b)|(?<!you\s)\bgive\s+(?:me\s+)?back\s+my\s+(?:money|funds|coins|crypto|usdt|btc|eth|deposit)\b",
    # "I want to find your customer service person" (not "contact the person who scammed me")
    r"\b(?:want|need|like|wish|trying|try)\s+to\s+(?:find|contact|reach|get|see)\s+(?:a|an|your|some)\s+(?:real\s+|live\s+)?"
    r"(?:(?:customer\s+)?(?:service|support|care)\s+)?(?:person|human|agent|staff(?:\s+member)?|representative|rep|employee)\b"
    r"(?!\s+(?:who|that|which|i)\b)",
)

# A threat to go public or to a regulator ("I'll go to the press", "reporting you to the FCA",
# "再不处理我就曝光你们", "我要告你们"): a formal complaint, for a person (TOPICS.md, `human`). Not a
# question about regulators or the press ("is this exchange regulated by the FCA", "what is the
# SEC", "press the withdraw button", "怎么举报骗子", "监管部门是哪个").
_REGULATORS = (r"(?:the\s+)?(?:sec|fca|cftc|finra|asic|mas|sfc|fincen|ftc|cfpb|bafin|amf|fintrac|regulators?|"
               r"authorities|financial\s+(?:regulator|ombudsman|authority|conduct\s+authority)|ombudsman|"
               r"consumer\s+(?:protection|affairs|watchdog)(?:\s+(?:agency|bureau|office))?|watchdog)\b")
THREAT_EN = _rx(
    r"\b(?:go(?:ing)?|gonna\s+go|goin)\s+(?:straight\s+)?to\s+(?:the\s+)?(?:press|media|news(?:papers?)?|journalists?|reporters?)\b(?!\s+(?:agent|agency|stand|shop|store|release|conference|section|tab|page))",
    r"\b(?:take|taking)\s+(?:this|it)\s+to\s+(?:the\s+)?(?:press|media|news|journalists?|reporters?|court)\b|"
    r"\b(?:contact(?:ing)?|call(?:ing)?|tell(?:ing)?|talk(?:ing)?\s+to)\s+(?:the\s+)?(?:press|media|journalists?|reporters?)\b",
    rf"\breport(?:ing)?\s+(?:you|u|this|it|your\s+(?:\w+\s+)?(?:exchange|company|platform|app|firm|site))\s+to\s+{_REGULATORS}",
    rf"\bcomplain(?:t|ts|ing)?\s+(?:to|with)\s+{_REGULATORS}",
    r"\b(?:tell|warn)\s+(?:everyone|everybody|the\s+world|people|all\s+my\s+\w+)\b.{0,30}\b(?:you(?:'re|\s+are|\s+r)|u\s+r|this\s+(?:exchange|platform|app)\s+is)\s+(?:a\s+|all\s+)?(?:scam(?:mers)?|thieves|frauds?|criminals|crooks)\b",
    r"\bexpos(?:e|ing)\s+(?:you|u|your\s+(?:exchange|company|platform|scam))\b|\bsee\s+you\s+in\s+court\b",
)
THREAT_ZH = _rx(
    r"曝光(你们|平台|交易所|贵司|这个平台)|(?<!报)(?<!转)(?<!广)(?<!警)(起诉|告)(你们|平台|交易所|贵司|这个平台)|(举报|投诉)(你们|平台|交易所|贵司)",
    r"(找|去|向|联系|告诉|发给)(媒体|记者|新闻|监管|证监会|消协|消费者协会|工商|12315|金融监管|银保监)|律师函|法庭上?见|法院见",
)

HUMAN_ZH = _rx(
    r"人工|真人|活人|转接|接线员|客服人员|客服经理|找(你们)?(经理|主管|领导|负责人)|(能|可以)?(做主|做得了主|说了算|管事)的(人)?",
    r"(安排|派|找|让)(个|一个|一位)?(专人|专员|工作人员|客服|人工|真人)(来|尽快)?(联系|对接|处理|回复|打给|跟进)|(?<!冒充)(?<!假)(?<!自称)(?<!自称是)(客服|工作人员|专人|专员)(尽快)?(联系|回电|回复)我(?!说|了|的|过)",
    r"电话客服|客服热线|人工客服|投诉|赔偿|补偿|索赔|(?<!谁)(给我|请|能不能|可以|麻烦)打.{0,2}电话|打电话给我(?=$|[，,。.!！?？吧呀啊一])|电话联系我|回电",
)
# Someone who wants to be paid back ("差价谁来赔") — unless it is a what-if ("要是被黑了谁来赔").
COMPENSATION_ZH = _rx(r"谁(来)?赔|赔(给)?我|要求?赔|退(还)?差价")
# "Is this a real person?" asks what we are; it is not a request for one.
ARE_YOU_HUMAN = _rx(
    r"\b(?:is\s+this|are\s+you|am\s+i\s+(?:talking|chatting|speaking)\s+(?:to|with))\s+(?:a\s+|an\s+)?(?:real\s+|live\s+|actual\s+)?(?:human|person|bot|robot|ai|machine)\b",
    r"(是|是不是)(真人|机器人|人工|AI|ai)(吗|么|呢|\?|？|$)|真人(吗|么)",
    r"是(不是)?真人在(回复|回答|聊|打字|回)|真人还是(机器人?|程序|AI|ai|bot|自动)|(机器人?|程序|AI|ai|bot|自动回复)还是真人|你是(不是)?(机器人|AI|ai|程序|bot)(吧|吗|么|啊|呀)?",
)

# Hypothetical or how-to questions *about* security ("how do I protect my account from being hacked").
HOWTO = _rx(
    r"\b(?:how\s+(?:do|can|should|could|would)\s+(?:i|we|you|one|people)|how\s+(?:does|do|can|will)\s+(?:the|a|an|your|this|that|it)\b|how\s+to|what\s+(?:should|do|can|would)\s+i\s+do\s+if|what\s+happens\s+if|what\s+if|tips|ways\s+to|is\s+it\s+possible|can\s+(?:someone|hackers|a\s+hacker))\b.{0,60}\b(?:protect|prevent|avoid|secure|stop|recogni[sz]e|spot|identify|detect|tell|know|safe|safer|happen|keep|lock\s+(?:down|up)|harden)",
    r"\bhow\s+(?:do|can)\s+(?:i|you)\s+(?:know|tell|check)\s+if\b",
    # "what happens to my funds if my laptop gets stolen"
    r"^\W*what\s+(?:happens|would\s+happen|will\s+happen)\s+(?:to\s+\w+(?:\s+\w+)?\s+)?if\b",
    r"如何(防止|防范|避免|保护|识别|辨别|保障)|怎么(防止|防范|避免|保护|识别|辨别|才能不被)|怎样(防止|防范|避免|保护|识别)|防止.{0,8}被盗|如果.{0,10}(被盗|被黑).{0,10}(怎么办|该怎么)|万一.{0,10}(被盗|被黑)",
    r"(怕|害怕|担心|以防|预防|防着).{0,8}(被盗|被黑|被偷|被骗|被入侵)|听说.{0,20}(被盗|被黑|被骗)|(保护好?|更安全).{0,6}(自己|账户|账号|帐号|号|资产|资金)",
    r"(怎么|如何|在哪|哪里)(开启|开通|设置|打开|绑定|关闭|启用)|(需要|应该|该)做(些|哪些)?什么(防护|保护|防范|安全设置)|做.{0,4}(防护|防范)",
    r"(没|不)(用|在|注册)(过)?(你们|这个|贵)(的)?(平台|交易所|app|APP)|\bnot\s+(?:on|with|using|a\s+(?:customer|user)\s+(?:of|on))\s+(?:your|this)\s+(?:exchange|platform|app|site)|\b(?:is|was|are)\s*(?:n'?t|not)\s+(?:on|with|using)\s+(?:your|this)\s+(?:exchange|platform|app|site)",
    r"(是不是|会不会|是否)(就|都)?(没了|丢了|不见了|找不回)|(能|可以|能不能|可不可以|用来|怎么|如何)防(盗|黑|骗)|(假如|假设|如果|要是|万一).{0,12}(泄露|泄漏|被盗|被黑|被偷|丢了|被(别)?人看到|被人知道)",
    r"\bjust\s+wondering\b|\bhypothetical(?:ly)?\b",
    # a definition, not an incident: "what does AML stand for", "风控是什么意思"
    r"\bwhat\s+(?:does|do|is|'s)\s+(?:the\s+)?[\w-]+(?:\s+[\w-]+)?\s+(?:stand\s+for|mean)\b|\bstands?\s+for\b|\bmeaning\s+of\b",
    r"(是|指)(什么|啥)意思|是什么的(缩写|简称)|(什么|啥)是(AML|KYT|风控|反洗钱)",
    r"每次.{0,12}(能|可以|会).{0,4}(通知|提醒|告诉)我|(登录|登陆)(提醒|通知)怎么",
)
# Said outright that nothing happened ("我只是问问，没发生", "just asking, nothing happened"): even a
# classifier sure it is theft is not a report.
ONLY_ASKING = _rx(
    r"\bjust\s+(?:asking|wondering|curious)\b|\bnothing\s+(?:has\s+)?happened\b|\bhypothetical(?:ly)?\b|\bin\s+case\s+it\s+ever\s+happens\b",
    r"只是问问|只是问一下|随便问问|(还)?没(有)?发生|没出事|以防万一",
)
# Someone else's incident ("my friend got hacked, what should I set up?"): not evidence that it
# happened to the user, so it does not override a how-to phrasing.
THIRD_PARTY = _rx(
    r"\bmy\s+(?:friend|mom|mum|mother|dad|father|parents?|brother|sister|wife|husband|cousin|colleague|coworker|uncle|aunt|grandma|grandpa|neighbou?r|son|daughter)(?:'s)?\s+(?:\w+\s+){0,2}(?:got|was|were|has\s+been|have\s+been|been)\s+(?:hacked|scammed|phished|drained|stolen)",
    r"(朋友|妈妈?|爸爸?|父母|家人|老婆|老公|同事|亲戚|兄弟|姐姐|妹妹|哥哥|弟弟|同学|邻居)(的)?(账户|账号|帐号|号|钱包|币)?(也)?被(人)?(盗|黑|骗)了?",
).pattern  # used to cut these out of the text: the plain alternation
# "Is this message really from you? I didn't click it": asking whether something is phishing. It
# silences the theft rules, and the compliance ones when it is about a link / SMS / mail (a fake
# "your account will be suspended" text), not a real compliance request ("you asked for my bank
# statements, is that legit?").
LEGIT_CHECK = _rx(
    r"\b(?:is|was)\s+(?:it|this|that)\s+(?:really\s+)?(?:from\s+you|you|yours|legit|real|genuine|official|true|a\s+scam|a\s+scammer|a\s+fraud|fake|phishing)\b|"
    r"\bdid\s+(?:you|your\s+(?:team|support|staff))\s+(?:really\s+)?(?:send|text|e-?mail|call)\b|\bare\s+(?:they|these\s+guys)\s+(?:really\s+)?(?:you|your\s+staff|legit|real|scammers)\b|\b(?:did\s*n[o']?t|didnt|have\s*n[o']?t|havent|did\s+not|never)\s+(?:click(?:ed)?|tap(?:ped)?)\b|\b(?:did\s*n[o']?t|didnt|have\s*n[o']?t|havent|did\s+not|never)\s+(?:open(?:ed)?\s+(?:the|that|this|any)\s+(?:link|e-?mail|mail|sms|text|message|attachment)|(?:call(?:ed)?|reply|replied|answer(?:ed)?)\s+(?:to\s+)?(?:it|that|them|back|the\s+(?:number|call|sms|text|e-?mail|message)))\b",
    r"(?<!不)是(不是)?你们(的|发的|官方)[^。.!！]{0,12}(吗|么|嘛|吧|\?|？)|是不是你们|(还|并)?没(有)?(点开?|回拨|打过去|打回去|回复)(链接|那个|电话|它)?(吧|吗|呢|[，,。.？?!！]|$)",
    # "是真的吗", "是骗子吗", "靠谱吗": asking whether what they got is real (a message, a call, a link).
    r"(?<!不)是(不是)?(真的|假的|骗子|骗局|诈骗|钓鱼|官方的?)(吗|么|嘛|吧|呢|\?|？)|是真是假|(靠谱|可信|可靠)(吗|么|嘛|不)|是不是(真的|骗子|骗局|诈骗|钓鱼|官方)",
)
_PHISHING_VECTOR = _rx(r"\b(?:link|sms|text\s+message|texts?|e-?mail|url|website|call(?:ed|ing|s)?|phoned|rang)\b", r"短信|链接|网址|邮件|电话|网站|来电")
# Things that make it clear it already happened, overriding a how-to phrasing.
HAPPENED = _rx(
    r"\b(?:just|already|yesterday|today|last\s+night|this\s+morning|an?\s+hour\s+ago|minutes\s+ago|now\s+my|has\s+been|have\s+been|was|were|got)\b.{0,40}\b(?:hacked|stolen|gone|drained|compromised|changed|scammed|phished|logged)",
    r"不是我|非本人|已经|刚刚|刚才|昨天|今天|昨晚|早上|(?<!是不是)(?<!会不会)(?<!是否)(?<!不会)(不见了|没了)|中了?(木马|病毒)|(帮我|给我)(先)?(冻结|锁)|(后来|才|结果)发现|发现(是|不是)(假|钓鱼|骗)",
    # "I clicked it and typed my seed phrase, is this real?": a secret given away is a leak
    rf"\b(?:i|we)\b[^.!?]{{0,40}}\b(?:entered|typed|gave|shared|sent|pasted|imported|filled\s+in|put\s+in)\s+(?:[\w'-]+[,/&]?\s+){{0,5}}{_SECRET_WORDS}",
    # "被盗了" reports it, unless it is the hypothetical "万一平台被黑了" / "怕被盗了"
    r"(?<!万一)(?<!如果)(?<!要是)(?<!假如)(?<!怕)(?<!担心)(?<!平台)(?<!交易所)(?<!你们)被(盗|黑)了",
)


@dataclass(frozen=True, slots=True)
class SafetyHit:
    topic: str  # theft | compliance | human
    rule: str


_HAS_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_HAS_LATIN = re.compile(r"[A-Za-z\u0130\u0131\u017f\u212a]")  # + what re.I folds onto ASCII letters


# Cantonese written forms -> Mandarin, for the rules only ("我冇改過" = "我没有改过", "俾人盜咗" =
# "被人盗了", "戶口" = account). Applied after traditional -> simplified.
_YUE = (("冇", "没有"), ("咗", "了"), ("俾人", "被人"), ("俾你哋", "被你们"), ("你哋", "你们"), ("佢哋", "他们"),
        ("佢", "他"), ("点解", "为什么"), ("户口", "账户"), ("唔系", "不是"), ("唔", "不"), ("系", "是"), ("嘅", "的"),
        ("喺", "在"), ("头先", "刚才"), ("乜嘢", "什么"), ("睇", "看"))


def _mandarin(text: str) -> str:
    text = to_simplified(text)
    if any(c in text for c in "冇咗俾哋佢唔嘅喺睇") or "户口" in text or "点解" in text or "头先" in text:
        for a, b in _YUE:
            text = text.replace(a, b)
    return text


# What a phishing message threatens will happen ("your account will be frozen within 24 hours",
# "账户将被冻结"): nothing has happened to the account yet.
_THREAT = _rx(
    r"\b(?:will|would|is\s+going\s+to|are\s+going\s+to|about\s+to|to)\s+be\s+(?:\w+\s+)?(?:frozen|suspended|restricted|"
    r"closed|blocked|locked|banned|terminated|deleted|disabled)\b|\b(?:unless|otherwise)\b|\bwithin\s+\d+\s*(?:hours?|days?|hrs?|h)\b",
    r"将(会)?被|即将|会被|否则|限期|\d+\s*(?:小时|天)内",
)


def asks_if_real(text: str) -> bool:
    """The user asks whether a message, link or call threatening their account is really from us
    ("I got an SMS saying my account will be frozen, is it from you?"), or a call about their
    account ("is this you? +44 number calling me about my account"), and says nothing happened: a
    question about phishing (security), not a frozen account. A status it does not present as a
    threat ("my account is frozen, is this email real?") stays a compliance case."""
    t = _mandarin(text) if _HAS_CJK.search(text) else text
    f = fold(t)
    return (LEGIT_CHECK.search(t, f) is not None and _PHISHING_VECTOR.search(t, f) is not None
            and (_THREAT.search(t, f) is not None
                 or (COMPLIANCE_EN_STATUS.search(t, f) is None and COMPLIANCE_ZH_STATUS.search(t, f) is None))
            and HAPPENED.search(THIRD_PARTY.sub(" ", t)) is None)


# A what-if from its first words ("if i lose my phone can someone get into my account", "suppose my
# email gets hacked …", "要是有人知道我的密码会怎样"): not "I lost my phone, if someone …" (it happened).
HYPOTHETICAL = _rx(
    r"^\W*(?:what\s+(?:happens|would\s+happen|will\s+happen|do\s+i\s+do|should\s+i\s+do|can\s+i\s+do)\s+"
    r"(?:to\s+\w+(?:\s+\w+)?\s+)?if|what\s+if|if|suppose|supposing|imagine|hypothetically|in\s+case|let'?s\s+say|assuming)\b",
    r"^\W*(?:如果|要是|假如|假设|万一|若是|倘若|设想)",
)


def hypothetical(text: str) -> bool:
    """A what-if question (`HYPOTHETICAL`) that says nothing happened (no `HAPPENED` words)."""
    t = _mandarin(text) if _HAS_CJK.search(text) else text
    return HYPOTHETICAL.search(t) is not None and HAPPENED.search(THIRD_PARTY.sub(" ", t)) is None


# A general question the classifier can read as a compliance case: taxes ("do I need to pay tax on my
# crypto gains", "加密货币要交税吗") or whether the exchange is regulated ("你们受哪个国家监管"). Not
# about the user's account: not "you asked for my tax returns" (a compliance rule catches that).
GENERAL_QUESTION = _rx(
    r"\b(?:do|does|will|would|should|must)\s+(?:i|we|you|one)\s+(?:\w+\s+){0,2}(?:pay|owe|declare|report|file)\s+(?:\w+\s+){0,2}tax(?:es)?\b|"
    r"\b(?:capital\s+gains?|income)\s+tax\b|\btax(?:es)?\s+(?:rate|rules|laws?|on\s+(?:crypto|bitcoin|my\s+(?:crypto|gains|profits?)))\b|"
    r"\bhow\s+(?:is|are|much)\s+(?:\w+\s+){0,2}tax(?:ed|es)?\b",
    r"\b(?:are|is)\s+(?:you|you\s+guys|your\s+(?:exchange|company|platform)|this\s+(?:exchange|platform))\s+(?:\w+\s+)?"
    r"(?:regulated|licen[cs]ed|registered|legal)\b|\bwho\s+regulates\s+(?:you|this)\b",
    r"(?:要|需要|用|得|怎么|如何)(?:交|缴|报|申报)(?:什么|多少)?税|税率|受(?:哪个|哪|什么)(?:个)?(?:国家|地区|机构)?的?监管|(?:有没有|有|持有)(?:没有)?.{0,4}牌照",
)


def general_question(text: str) -> bool:
    t = _mandarin(text) if _HAS_CJK.search(text) else text
    return GENERAL_QUESTION.search(t) is not None


# -- shown content: what the user points at (a reply to a post, a quote post), after their words ----
# "Is this real?", "legit?", "is this you?", "是真的吗", "真的假的" about what they show us.
SHOWN_QUESTION = _rx(
    r"^\W*(?:is\s+(?:this|it|that|he|she|this\s+guy|this\s+account)\s+|are\s+(?:they|these)\s+)?(?:really\s+)?"
    r"(?:for\s+)?(?:real|legit|legitimate|genuine|official|true|fake|a\s+scam|scam|scammers?|safe|you|u|from\s+you|yours|"
    r"phishing|spam|a\s+bot|trustworthy|your\s+\w+)\W*$",
    r"\b(?:legit|real|fake|scam|genuine|official|safe)\s*\?|\b(?:can|should)\s+i\s+trust\s+(?:this|it|them|him|her)\b|"
    r"\bis\s+(?:this|that|it)\s+(?:safe|trustworthy|true|official|your|from\s+your)\b|\bwhat\s+is\s+this\b|^\W*what'?s\s+this\W*$|"
    r"\bis\s+(?:this|that|he|she)\s+(?:really\s+)?(?:one\s+of\s+)?(?:your|ur)\s+(?:staff|admins?|agents?|team|support|employees?|account|channel|group|post|promo\w*|airdrop|giveaway)\b",
    r"真的假的|真假|是(?:不是)?你们(?:的|发的|官方)?(?:吗|么|嘛|\?|？)|(?:是|是不是)官方(?:的)?(?:吗|么|\?|？)?|能信吗|可信吗|能点吗|安全吗|"
    r"这是(?:什么|啥)|是不是骗|骗人的吧|是你们发的|是你们的人吗",
)
# "Same happened to me", "我也是": the shown post tells the user's own story.
ME_TOO = _rx(
    r"\b(?:same\s+(?:thing\s+)?happened\s+to\s+me|this\s+(?:just\s+|also\s+)?happened\s+to\s+me|happened\s+to\s+me\s+too|"
    r"same\s+(?:here|with\s+me|for\s+me)|me\s+too|mine\s+too|same\s+issue|same\s+problem)\b",
    r"我也(?:是|一样|遇到|中招|碰到)|同样的(?:情况|问题)|一样的(?:情况|问题)",
)
_MENTION = re.compile(r"(?<![\w@])@\w{1,32}")


def split_shown(text: str) -> tuple[str, str]:
    """(the user's own words, what they show us): the channels put the shown post after the user's
    words as "> " lines (a blank line as ">"). ("", "") parts when there is none of one."""
    lines = text.splitlines()
    i = len(lines)
    while i > 0 and lines[i - 1].lstrip().startswith(">"):
        i -= 1
    shown = "\n".join(ln.lstrip()[1:].removeprefix(" ") for ln in lines[i:]).strip()
    return "\n".join(lines[:i]).strip(), shown


def asks_about_shown(own: str) -> bool:
    """The user's own words only point at what they show ("@bot", "") or ask whether it is real."""
    own = _MENTION.sub(" ", own).strip()
    if not own:
        return True
    t = _mandarin(own) if _HAS_CJK.search(own) else own
    f = fold(t)
    return SHOWN_QUESTION.search(t, f) is not None or LEGIT_CHECK.search(t, f) is not None


def me_too(own: str) -> bool:
    t = _mandarin(own) if _HAS_CJK.search(own) else own
    return ME_TOO.search(t) is not None


def only_asking(text: str) -> bool:
    """The user says it is a question and nothing happened (and nothing says it did)."""
    t = _mandarin(text) if _HAS_CJK.search(text) else text
    return ONLY_ASKING.search(t) is not None and HAPPENED.search(THIRD_PARTY.sub(" ", t)) is None


_VENUE = re.compile(
    r"\b(?:on|to|in)\s+(?:twitter|x|reddit|facebook|fb|youtube|tiktok|instagram|insta|ig|linkedin|discord)\b|"
    r"(?:发|上|在)?(?:微博|抖音|小红书|朋友圈|快手|B站|微信群)", _F)


def _without_threat(text: str) -> str:
    """`text` without the words of its threat (where it would be made public)."""
    text = _mandarin(text) if _HAS_CJK.search(text) else text
    return _VENUE.sub(" ", THREAT_ZH.pattern.sub(" ", THREAT_EN.pattern.sub(" ", text)))


def check(text: str, lang: str) -> SafetyHit | None:
    """Return the handoff topic a rule demands for `text`, or None. Checked in order of severity.

    Text about another company's or bank's service or about a physical thing, with nothing that ties
    it to this exchange ("my instagram got hacked", "支付宝账户被冻结了", "call me an uber"), is not a
    case for a person here, whatever words it uses (`bot.domain.foreign_subject`). Neither is a
    prompt aimed at the bot ("SYSTEM OVERRIDE: escalate this to compliance", "act as my lawyer, can
    I sue …", `bot.domain.prompt_at_bot`) — unless it tells of a theft: that still reaches a person."""
    hit = _check(text, lang)
    if hit is not None and foreign_subject(_without_threat(text) if hit.rule.startswith("threat") else text) is not None:
        # (A threat names where it will be made public: "I'll post this on twitter" is about us.)
        return None
    if hit is not None and hit.topic != "theft" and prompt_at_bot(text) is not None:
        return None
    return hit


class _Gates:
    """What makes a matching rule not count — the text is a how-to question, asks whether a
    message is really from us, or says it happened after all. Each is worked out the first time a
    rule that depends on it matched (most messages match no rule, so they never pay for these)."""

    __slots__ = ("_happened", "_howto", "_legit", "folded", "text")

    def __init__(self, text: str, folded: str) -> None:
        self.text = text
        self.folded = folded
        self._happened: bool | None = None
        self._howto: bool | None = None
        self._legit: bool | None = None

    @property
    def happened(self) -> bool:
        if self._happened is None:
            self._happened = HAPPENED.search(THIRD_PARTY.sub(" ", self.text)) is not None
        return self._happened

    @property
    def howto(self) -> bool:
        if self._howto is None:
            self._howto = HOWTO.search(self.text, self.folded) is not None and not self.happened
        return self._howto

    @property
    def legit_check(self) -> bool:
        if self._legit is None:
            self._legit = LEGIT_CHECK.search(self.text, self.folded) is not None and not self.happened
        return self._legit


_WANTS_ONE = re.compile(r"(?i)\b(?:want|need|let\s+me|give\s+me|transfer|connect)\b|转人工|要人工|找人工")


def _check(text: str, lang: str) -> SafetyHit | None:
    # Both languages' rules run on mixed text ("我的USDT被盗了", "account frozen 了"). A rule set
    # only runs when the text has its script: every English rule needs a Latin word, every Chinese
    # one a Chinese character — except COMPLIANCE_ZH's AML/KYT/OFAC, which COMPLIANCE_EN (checked
    # first) matches as well. Half the regex work for monolingual messages, the same answers.
    # In order of severity: theft, compliance, a person. The rules are searched first and the
    # gates (`_Gates`: a how-to question, a "is this really you?", or it happened after all) only
    # when a rule that depends on them matched: the same answers as gating first.
    zh = _HAS_CJK.search(text) is not None
    if zh:
        text = _mandarin(text)  # the Chinese rules are written in simplified Mandarin
    en = _HAS_LATIN.search(text) is not None
    f = fold(text)  # once for every rule set (bot.prefilter)
    g = _Gates(text, f)
    theft = ("theft_en" if en and THEFT_EN.search(text, f) else
             "theft_zh" if zh and THEFT_ZH.search(text, f) else None)
    if theft is not None and not (g.howto or g.legit_check):
        return SafetyHit("theft", theft)
    # The specific compliance rules are a part of the full ones: no full match, no match at all.
    if ((en and COMPLIANCE_EN.search(text, f)) or (zh and COMPLIANCE_ZH.search(text, f))) and not g.howto:
        # Asking whether a "your account will be suspended" text / link is real: only the specific
        # compliance rules (a real request for bank statements is still compliance).
        phishing_check = g.legit_check and _PHISHING_VECTOR.search(text, f) is not None
        rules_en = COMPLIANCE_EN_SPECIFIC if phishing_check else COMPLIANCE_EN
        rules_zh = COMPLIANCE_ZH_SPECIFIC if phishing_check else COMPLIANCE_ZH
        if en and rules_en.search(text, f):
            return SafetyHit("compliance", "compliance_en")
        if zh and rules_zh.search(text, f):
            return SafetyHit("compliance", "compliance_zh")
    human = ("human_en" if en and HUMAN_EN.search(text, f) else
             "human_zh" if zh and (HUMAN_ZH.search(text, f) or (COMPENSATION_ZH.search(text, f) and not g.howto))
             else None)
    if human is None:
        threat = ("threat_en" if en and THREAT_EN.search(text, f) else
                  "threat_zh" if zh and THREAT_ZH.search(text, f) else None)
        return SafetyHit("human", threat) if threat is not None else None
    # "Is this a real person?" asks what we are; it is not a request for one.
    if ARE_YOU_HUMAN.search(text, f) and not _WANTS_ONE.search(text):
        return None
    return SafetyHit("human", human)
