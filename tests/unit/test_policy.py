"""The routing policy as a pure function: TOPICS.md rules without servers."""

from pathlib import Path

import pytest

from bot import safety
from bot.config import SLASettings
from bot.models import Action, Priority
from bot.policy import ConvState, decide, format_eta, slots_from, topic_of
from bot.redact import redact
from intents.answers import Answers
from intents.client import NLUResult

ROOT = Path(__file__).resolve().parents[2]
ANSWERS = Answers(ROOT / "intents" / "answers")
SLA = SLASettings()


def run(text: str, intent: str, conf: float, state: ConvState | None = None, lang: str = "en", **kw):  # type: ignore[no-untyped-def]
    return decide(text=text, lang=lang, nlu=NLUResult(intent, conf, ((intent, conf),)), state=state or ConvState(),
                  answers=ANSWERS, sla=SLA, threshold=0.5, escalate_after=2, **kw)


def lang_of(text: str) -> str:
    return "zh" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en"


def routed(text: str, wrong_topic: str):  # type: ignore[no-untyped-def]
    """`text` decided while the classifier is sure (0.9) of an intent of `wrong_topic`."""
    lang = lang_of(text)
    return run(text, any_intent(wrong_topic, lang), 0.9, lang=lang)


def any_intent(topic: str, lang: str = "en") -> str:
    return sorted(k for k in ANSWERS.keys(lang) if topic_of(k) == topic)[0]


def test_topic_from_intent_prefix() -> None:
    assert topic_of("deposit_not_arrived") == "deposit"
    assert topic_of("out_of_scope_weather") == "out_of_scope"
    assert topic_of("smalltalk_greet") == "smalltalk"
    assert topic_of("nlu_fallback") == "out_of_scope"


def test_confident_answer_topic_is_answered_in_the_users_language() -> None:
    intent = any_intent("deposit", "zh")
    out = run("USDT充值一直没到账怎么办", intent, 0.9, lang="zh")
    assert out.action is Action.ANSWER and out.topic == "deposit"
    assert out.reply == ANSWERS.get(intent, "zh", coin="USDT")
    assert out.priority is Priority.LOW


def test_theft_rule_overrides_a_wrong_confident_classifier() -> None:
    out = run("my account was hacked and my BTC is gone", any_intent("deposit"), 0.97)
    assert out.action is Action.HANDOFF and out.topic == "theft" and out.priority is Priority.URGENT
    assert out.reason.startswith("safety_rule:")
    assert "within 15 minutes" in out.reply
    assert "never ask for your password" in out.reply
    assert out.state.mode == "agent"


def test_chinese_theft_and_compliance_rules() -> None:
    out = run("我的账户被盗了，不是我操作的提币", "smalltalk_greet", 0.2, lang="zh")
    assert (out.action, out.topic, out.priority) == (Action.HANDOFF, "theft", Priority.URGENT)
    assert "15 分钟内" in out.reply
    out = run("账户被冻结了怎么回事", "account_login_problem", 0.8, lang="zh")
    assert (out.action, out.topic, out.priority) == (Action.HANDOFF, "compliance", Priority.HIGH)


def test_asking_about_security_is_answered_not_escalated() -> None:
    intent = any_intent("security")
    out = run("How can I protect my account from being hacked?", intent, 0.8)
    assert out.action is Action.ANSWER and out.topic == "security"


def test_vip_raises_handoff_priority_one_step() -> None:
    out = run("I want to talk to a real person", "human_request_agent", 0.9, state=ConvState(vip=1))
    assert out.topic == "human" and out.priority is Priority.HIGH
    out = run("I want to talk to a real person", "human_request_agent", 0.9)
    assert out.priority is Priority.NORMAL


def test_second_failed_understanding_escalates_to_a_person() -> None:
    first = run("blorp fizz", any_intent("deposit"), 0.2)
    assert first.action is Action.CLARIFY and first.topic == "out_of_scope" and first.reply
    second = run("zzz qqq", any_intent("deposit"), 0.1, state=first.state)
    assert second.action is Action.HANDOFF and second.topic == "human" and second.reason == "second_fallback"
    assert second.state.mode == "agent"


def test_an_answer_resets_the_fallback_count() -> None:
    first = run("blorp", "nlu_fallback", 0.1)
    ok = run("how do I deposit", any_intent("deposit"), 0.9, state=first.state)
    assert ok.state.fallbacks == 0
    again = run("blorp", "nlu_fallback", 0.1, state=ok.state)
    assert again.action is Action.CLARIFY


def test_agent_mode_keeps_the_bot_silent() -> None:
    out = run("hello? anyone?", "smalltalk_greet", 0.99, state=ConvState(mode="agent", handoff_topic="theft"))
    assert out.silent and out.reply == "" and out.action is Action.HANDOFF and out.topic == "theft"


def test_pasted_seed_phrase_goes_to_a_person_and_warns() -> None:
    out = run("here is [REDACTED:seed_phrase] please fix", any_intent("account"), 0.9, redactions=("seed_phrase",))
    assert out.action is Action.HANDOFF and out.topic == "theft"


@pytest.mark.parametrize("text", ["2FA backup key: JBSWY3DPEHPK3PXP", "google authenticator setup key jbsw y3dp ehpk 3pxp",
                                  "谷歌验证器密钥 JBSWY3DPEHPK3PXP"])
def test_a_pasted_2fa_setup_key_is_redacted_and_goes_to_a_person(text: str) -> None:
    # Whoever holds the setup key makes the codes: it is exposed like an API secret.
    found = redact(text)
    assert "JBSW" not in found.text.upper().replace(" ", "")
    out = run(found.text, any_intent("security"), 0.9, redactions=found.kinds)
    assert out.action is Action.HANDOFF and out.topic == "theft"


def test_a_card_number_is_redacted_and_answered_with_the_warning() -> None:
    found = redact("I bought USDT with my visa 4111 1111 1111 1111 cvv 123 and nothing arrived")
    assert "4111" not in found.text and "123" not in found.text and found.kinds == ("card", "card")
    out = run(found.text, any_intent("deposit"), 0.9, redactions=found.kinds)
    assert out.action is Action.ANSWER and ANSWERS.get("secret_redacted", "en") in out.reply


def test_redacted_password_adds_the_warning_to_an_answer() -> None:
    intent = any_intent("account")
    out = run("cant login password: [REDACTED:password]", intent, 0.9, redactions=("password",))
    assert out.action is Action.ANSWER
    assert ANSWERS.get("secret_redacted", "en") in out.reply


def test_slots_and_eta() -> None:
    assert slots_from("send usdt via trc-20 please", {}) == {"coin": "USDT", "network": "TRC20"}
    assert slots_from("x", {"coin": "BTC"}) == {"coin": "BTC"}
    # Inside Chinese text, where \b does not separate "的" from "USDT".
    assert slots_from("我的USDT用TRC20充值没到账", {}) == {"coin": "USDT", "network": "TRC20"}
    assert slots_from("提币BTC到冷钱包", {}) == {"coin": "BTC"}
    assert slots_from("the method button is gone", {}) == {}
    # NLU entities win, spelled the same way.
    assert slots_from("x", {"coin": "usdt", "network": "trc-20", "ticket_id": "sb 12"}) == {
        "coin": "USDT", "network": "TRC20", "ticket_id": "SB-000012"}  # no "eth" in "method", no "ton" in "button"
    assert format_eta(15, "en") == "within 15 minutes"
    assert format_eta(240, "zh") == "4 小时内"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_system_reply_exists_in_both_languages(lang: str) -> None:
    for key in ("clarify", "escalate_after_fallbacks", "handoff_theft", "handoff_compliance", "handoff_human",
                "never_ask", "secret_redacted"):
        assert ANSWERS.has(key, lang), key


def test_confidence_split_between_sibling_intents_counts_for_the_topic() -> None:
    how, net = "deposit_how", "deposit_choose_network"
    nlu = NLUResult(how, 0.45, ((how, 0.45), (net, 0.40), ("trading_spot_convert", 0.05)))
    out = decide(text="How do I deposit USDT on TRC20?", lang="en", nlu=nlu, state=ConvState(), answers=ANSWERS,
                 sla=SLA, threshold=0.5, escalate_after=2)
    assert out.action is Action.ANSWER and out.topic == "deposit" and out.intent == how
    split = NLUResult(how, 0.45, ((how, 0.45), ("trading_spot_convert", 0.40)))
    out = decide(text="deposit or convert?", lang="en", nlu=split, state=ConvState(), answers=ANSWERS,
                 sla=SLA, threshold=0.5, escalate_after=2)
    assert out.action is Action.CLARIFY


@pytest.mark.parametrize("text", [
    "this withdrawal isn't mine: 0x4c574db0bf0d79b82fba87561970c65758dd29db983f8055fd73b04bb076e94d",
    "there's a new address in my whitelist that i never added",
    "my account shows a login from Lagos but i'm in Toronto",
    "收到防钓鱼码修改的邮件，可我什么都没改",
    "这笔提币不是我提的",
])
def test_theft_phrasings_reach_a_person_whatever_the_classifier_says(text: str) -> None:
    out = run(text, any_intent("withdrawal"), 0.9, lang=lang_of(text))
    assert (out.action, out.topic) == (Action.HANDOFF, "theft")


@pytest.mark.parametrize(("text", "topic"), [
    ("can someone living in Iran use the exchange?", "compliance"),
    ("deposit arrived but it's on hold, says under review", "compliance"),
    ("a banner says my account has restrictions", "compliance"),
])
def test_compliance_phrasings_reach_a_person(text: str, topic: str) -> None:
    out = run(text, any_intent("account"), 0.9)
    assert (out.action, out.topic) == (Action.HANDOFF, topic)


@pytest.mark.parametrize(("text", "lang"), [
    ("is this a real human replying?", "en"),
    ("回复我的是真人吗", "zh"),
    ("where can I take a course on risk management", "en"),
    ("你们客服会打电话要我的谷歌验证码吗", "zh"),
    ("每次有人登录我的账户能通知我吗", "zh"),
])
def test_questions_about_people_and_security_are_not_handed_off(text: str, lang: str) -> None:
    out = run(text, any_intent("smalltalk", lang), 0.9, lang=lang)
    assert out.action is Action.ANSWER


def test_classifier_alone_needs_the_normal_threshold_for_a_person() -> None:
    out = run("is there a testnet i can connect my bot to", "human_request_agent", 0.41)
    assert out.action is not Action.HANDOFF


@pytest.mark.parametrize(("text", "topic"), [
    ("合约里多了一个20倍多单，我根本没开过", "theft"),
    ("I reused my exchange password on a forum that got hacked last week", "theft"),
    ("support asked me to provide bank statements and payslips, why?", "compliance"),
])
def test_more_handoff_phrasings(text: str, topic: str) -> None:
    out = routed(text, "trading")
    assert (out.action, out.topic) == (Action.HANDOFF, topic)


@pytest.mark.parametrize(("text", "topic"), [
    ("PLEASE FREEZE MY ACCOUNT NOW SOMEONE IS WITHDRAWING", "theft"),
    ("I clicked a link in a text and entered my email, password and google code on the page", "theft"),
    ("got a 'new device login' notification from a windows pc. i only use an iphone", "theft"),
    ("cant log in, the reset link goes to an email address i don't recognise", "theft"),
    ("合约账户莫名其妙开了个50倍空单，直接爆仓了，我真的没点过", "theft"),
    ("快帮我冻结账户，有人在提币", "theft"),
    ("this bot is useless, connect me with support staff", "human"),
    ("how do i escalate this?? nobody is helping me", "human"),
    ("reporting your support agent for being rude and closing my chat", "human"),
])
def test_indirect_reports_reach_a_person(text: str, topic: str) -> None:
    out = routed(text, "account")
    assert (out.action, out.topic) == (Action.HANDOFF, topic)
    if topic == "theft":
        assert out.priority is Priority.URGENT


@pytest.mark.parametrize("text", [
    "有什么办法让号更安全一点，怕被盗",
    "听说最近好多人被盗，我该做哪些设置保护自己",
    "万一平台被黑了我的钱咋办，有没有保险基金",
    "对面是真人还是程序啊",
])
def test_worries_and_questions_in_chinese_are_answered(text: str) -> None:
    out = run(text, any_intent("security", "zh"), 0.9, lang="zh")
    assert out.action is Action.ANSWER


def test_the_more_severe_reading_wins_when_rule_and_classifier_disagree() -> None:
    # The compliance rule sees "freeze my account"; the classifier sees theft: urgent theft.
    out = run("freeze my account please, coins leaving", "theft_unauthorized_withdrawal", 0.6)
    assert (out.topic, out.priority) == ("theft", Priority.URGENT) and out.reason.endswith("+nlu")
    # A classifier too unsure of theft does not override the rule.
    out = run("freeze my account please, coins leaving", "theft_unauthorized_withdrawal", 0.1)
    assert out.topic == "compliance"
    # Still my account was hacked and still urgent when the classifier says compliance.
    out = run("my account was hacked", "compliance_account_frozen", 0.9)
    assert (out.topic, out.priority) == ("theft", Priority.URGENT)


@pytest.mark.parametrize(("text", "topic"), [
    ("帳號被盜了，裡面的USDT全部被轉走", "theft"),  # traditional characters: the rules see simplified text
    ("帳戶被凍結了，完全不能提幣", "compliance"),
    ("why does my spot balance say 0.00000 btc??? there was 0.8 in there on friday", "theft"),
    ("收到防钓鱼码修改的邮件，我什么都没改", "theft"),
    ("我是VIP，找个能做主的来", "human"),
    ("got an email asking for a source of wealth declaration and bank statements, is that legit?", "compliance"),
    ("API密钥不小心截图发到群里了，有提币权限的", "theft"),
    ("半夜有三笔提币到陌生地址，能追回吗", "theft"),
])
def test_rules_read_traditional_characters_symptoms_and_real_requests(text: str, topic: str) -> None:
    out = routed(text, "deposit")
    assert (out.action, out.topic) == (Action.HANDOFF, topic)


@pytest.mark.parametrize("text", [
    "got an sms 'your account will be suspended, verify here' with a link. didnt click. is it from you?",
    "提币白名单能防盗号吗",
    "假如我密码泄露了但开了2FA，别人能登进来吗",
    "收到短信说账户被冻结要点链接解冻，还没点，是你们发的吗",
    # Asking whether what they got is real, in the words people use for it.
    "收到一封邮件说我的账户要冻结，让我点链接验证，是真的吗",
    "收到短信说账户异常要被冻结，让我点链接，靠谱吗",
    "I got an SMS saying my account will be frozen unless I verify at a link, is that you?",
    "got an email that my withdrawals are suspended until I log in at the link. was it really you?",
    "I sent 0.8 ETH two hours ago, etherscan shows success but my balance still shows 0. tx 0x9d4727f1",
    "USDT充错链了，充到了ERC20地址，钱是不是没了",
])
def test_phishing_checks_and_hypotheticals_are_not_reports(text: str) -> None:
    out = routed(text, "security")
    assert out.action is Action.ANSWER


@pytest.mark.parametrize("text", [
    "i received an sms saying my account will be frozen, is it from you?",
    "got an email: your account will be suspended unless you verify within 24 hours. is this legit?",
    "收到短信说我的账户将被冻结，是你们发的吗",
    "收到一封邮件说我的账户24小时内会被冻结，让我点链接，是真的吗",
])
def test_asking_whether_a_freeze_threat_is_from_us_is_a_security_question(text: str) -> None:
    # The classifier reads the threat it quotes (a frozen account, 0.96); the user asks how to tell
    # a fake message from us: the phishing answer, no compliance ticket.
    out = run(text, "compliance_account_frozen", 0.96, lang=lang_of(text))
    assert (out.action, out.topic, out.intent) == (Action.ANSWER, "security", "security_fake_support_phishing")
    assert out.state.mode == "bot"


@pytest.mark.parametrize("text", [
    "my account was frozen and I got an sms about it, is it from you?",  # it happened
    "my account is frozen, why",
    "Got an email asking for source of funds documents, is it legit?",  # a real request (a rule)
])
def test_a_frozen_account_or_a_real_request_is_still_compliance(text: str) -> None:
    out = run(text, "compliance_account_frozen", 0.96, lang=lang_of(text))
    assert (out.action, out.topic) == (Action.HANDOFF, "compliance")


@pytest.mark.parametrize(("text", "topic"), [
    ("頭先收到個email話我改咗綁定手機號碼，我冇改過喎", "theft"),  # Cantonese
    ("i never opened this long, who did", "theft"),
    ("你们有电话客服吗", "human"),
    ("no i dont want to open a ticket, i want a person on chat", "human"),
    ("the convert screen showed the wrong price, I expect the difference refunded", "human"),
    ("法院判决书下来了，要求划扣我账户里的资产，我需要做什么", "compliance"),
    # "Is it real?" about their own account's status is no phishing check: no message or link in it.
    ("我的账户被冻结了，是真的吗？为什么", "compliance"),
    ("my account is frozen, is this real?", "compliance"),
])
def test_cantonese_and_more_requests_for_a_person(text: str, topic: str) -> None:
    out = routed(text, "trading")
    assert (out.action, out.topic) == (Action.HANDOFF, topic)


@pytest.mark.parametrize("text", [
    "my friend got hacked last week, any tips to lock down my account?",
    "我朋友账户被盗了，我需要做些什么防护",
    "怎么开启异地登录提醒",
    "是真人在回复吗",
    "how does the withdrawal whitelist stop someone else withdrawing",
])
def test_someone_elses_incident_and_setup_questions_are_answered(text: str) -> None:
    out = routed(text, "security")
    assert out.action is Action.ANSWER


@pytest.mark.parametrize(("text", "topic"), [
    ("hacked 🚨🚨🚨", "theft"),
    ("None of these ETH perp longs were opened by me. 20x, all liquidated within minutes", "theft"),
    ("I met a mentor on Telegram, he got me to move 3 BTC into his platform, now they want a 20% tax "
     "before I can withdraw. I know now it's a scam", "theft"),
    ("系统bug导致我的限价单按市价成交了，差价谁来赔？", "human"),
    ("点了邮件里的链接登录了 后来发现不是你们的网站", "theft"),
    ("I logged in through the link in the email and then realized the site was fake", "theft"),
])
def test_terse_alarms_scam_stories_and_claims(text: str, topic: str) -> None:
    out = routed(text, "trading")
    assert (out.action, out.topic) == (Action.HANDOFF, topic)


@pytest.mark.parametrize(("text", "lang"), [
    ("What does AML stand for? Keep seeing it in the app", "en"),
    ("交易所要是被黑客攻击了 用户的币谁来赔", "zh"),
    ("i sold usdt on p2p, the payment turned out to be scam money and now that balance is frozen", "en"),
])
def test_definitions_and_what_ifs_are_not_reports(text: str, lang: str) -> None:
    out = run(text, any_intent("glossary", lang), 0.9, lang=lang)
    assert out.topic != "theft" and out.topic != "human"


def test_only_asking_turns_a_confident_theft_reading_into_an_answer() -> None:
    ranking = (("theft_leaked_secret", 0.9), ("security_account_tips", 0.08))
    text = "如果助记词被别人看到了会怎么样？我只是问问，没发生"
    out = decide(text=text, lang="zh", nlu=NLUResult("theft_leaked_secret", 0.9, ranking), state=ConvState(),
                 answers=ANSWERS, sla=SLA, threshold=0.05, escalate_after=2)
    assert out.action is Action.ANSWER and out.intent == "security_account_tips"
    # Without the words that say nothing happened, the same reading hands off.
    out = decide(text="助记词被别人看到了", lang="zh", nlu=NLUResult("theft_leaked_secret", 0.9, ranking),
                 state=ConvState(), answers=ANSWERS, sla=SLA, threshold=0.05, escalate_after=2)
    assert (out.action, out.topic) == (Action.HANDOFF, "theft")


# -- rules around the NLU (pure functions of the policy) -------------------------------------------
def special(text: str = "", state: ConvState | None = None, command: str | None = None, arg: str = "",
            files: bool = False, ticket_on_clarify: bool = False):  # type: ignore[no-untyped-def]
    from bot.policy import before_nlu

    return before_nlu(text=text, state=state or ConvState(), command=command, command_arg=arg,
                      has_attachments=files, ticket_on_clarify=ticket_on_clarify)


def test_csat_rating_is_a_bare_digit_while_a_rating_is_asked_for() -> None:
    from bot.policy import csat_rating

    asked = ConvState(csat_pending="SB-000007")
    assert csat_rating(" 5 ", asked) == 5
    assert csat_rating("5 stars", asked) is None and csat_rating("6", asked) is None
    assert csat_rating("5", ConvState()) is None  # nobody asked: "5" is just a message
    assert csat_rating("5", ConvState(mode="agent", csat_pending="SB-000007")) is None  # a person has it
    sp = special("4", asked)
    assert (sp.intent, sp.csat, sp.ticket, sp.state.csat_pending) == ("csat", 4, "SB-000007", None)


def test_start_greets_help_helps_and_start_with_a_ticket_looks_it_up() -> None:
    from bot.policy import command_answer

    assert command_answer("start", "") == "welcome"
    assert command_answer("start", "group_account") == "welcome"  # a deep-link payload still greets
    assert command_answer("help", "") == "help"
    assert command_answer("start", "SB-12") is None and command_answer("human", "") is None
    sp = special("/start", ConvState(fallbacks=1), command="start")
    assert (sp.intent, sp.answer, sp.state.fallbacks) == ("command_start", "welcome", 0)
    looked = special("/start SB-12", command="start", arg="SB-12")
    assert (looked.intent, looked.ticket) == ("ticket_status", "SB-000012")
    assert special("/help", ConvState(mode="agent"), command="help") is None  # a person has it


def test_a_file_without_text_is_acknowledged_not_counted_as_a_failure() -> None:
    from bot.policy import is_file_without_text

    assert is_file_without_text("  ", True, None, False)
    assert not is_file_without_text("what is this?", True, None, False)
    assert not is_file_without_text("", False, None, False)
    assert not is_file_without_text("", True, None, True)  # e-mail: an empty mail becomes a ticket
    sp = special("", ConvState(fallbacks=1), files=True)
    assert (sp.intent, sp.answer, sp.state.fallbacks) == ("file_received", "file_received", 1)


def test_ticket_status_lookup_takes_the_number_from_the_command_and_words_the_status() -> None:
    from bot.policy import status_lookup, status_reply, ticket_number

    assert ticket_number("where is sb 12?") == "SB-000012" and ticket_number("no ticket") is None
    assert status_lookup("status", "SB-000345", "") == "SB-000345"
    assert status_lookup("status", "", "/status sb-7") == "SB-000007"
    assert status_lookup(None, "", "status of SB-7") is None  # plain text goes to the NLU
    assert "being handled by our team" in status_reply(ANSWERS, "en", "SB-000007", "open")
    assert "处理中" in status_reply(ANSWERS, "zh", "SB-000007", "open")
    unknown = status_reply(ANSWERS, "en", "SB-000007", None)  # missing or someone else's: same answer
    assert unknown == ANSWERS.get("ticket_status_unknown", "en", ticket="SB-000007") and unknown


def test_clarify_becomes_a_ticket_on_channels_that_ask_for_it() -> None:
    from bot.policy import clarify_to_ticket

    out = run("asdf qwer", "nlu_fallback", 0.1)
    assert out.action is Action.CLARIFY
    t = clarify_to_ticket(out, vip=0, lang="en", answers=ANSWERS, sla=SLA)
    assert (t.action, t.topic, t.priority, t.reason) == (Action.HANDOFF, "human", Priority.NORMAL, "clarify_to_ticket")
    assert t.state.mode == "agent" and t.state.handoff_topic == "human" and t.reply
    assert clarify_to_ticket(out, vip=1, lang="en", answers=ANSWERS, sla=SLA).priority is Priority.HIGH
    answered = run("how do I deposit", any_intent("deposit"), 0.9)
    assert clarify_to_ticket(answered, vip=0, lang="en", answers=ANSWERS, sla=SLA) is answered


# -- second round of outside input: threats, typos, other exchanges, what-ifs, tax ------------------
def ranked(text: str, ranking: list[tuple[str, float]], **kw):  # type: ignore[no-untyped-def]
    return decide(text=text, lang=lang_of(text), nlu=NLUResult(ranking[0][0], ranking[0][1], tuple(ranking)),
                  state=ConvState(), answers=ANSWERS, sla=SLA, threshold=0.5, escalate_after=2, **kw)


@pytest.mark.parametrize("text", [
    "if my withdrawal isn't processed today i will go to the press",
    "reporting you to the FCA tomorrow",
    "i'm going to the media with this",
    "going to post this on twitter and tell everyone you're thieves",
    "再不处理我就曝光你们",
    "我要告你们",
    "我要发微博曝光你们",
    "this is bullshit give me my money back",
    "i want to find your customer service person",
])
def test_a_threat_to_go_public_or_to_a_regulator_or_a_demand_reaches_a_person(text: str) -> None:
    out = routed(text, "out_of_scope")
    assert out.action is Action.HANDOFF and out.topic == "human", out.reason


@pytest.mark.parametrize("text", [
    "what is the SEC", "is this exchange regulated by the FCA", "press the withdraw button and nothing happens",
    "what does the press say about you", "how do i report a scammer", "going to the news agent to buy a paper",
    "监管部门是哪个", "怎么举报骗子", "我告诉你们我的UID了", "媒体报道说你们被黑了是真的吗",
    "can you give me my money back if I used the wrong network?", "i want to contact the person who scammed me",
    "my landlord won't fix the heating, i will report him to the authorities",
])
def test_questions_about_regulators_the_press_or_reports_are_not_threats(text: str) -> None:
    assert safety.check(text, lang_of(text)) is None


def test_a_mistyped_theft_and_my_frozen_funds_are_caught_by_the_rules() -> None:
    out = routed("my account was stealed", "compliance")
    assert out.topic == "theft" and out.priority is Priority.URGENT
    out = routed("i need to talk to someone about my frozen funds", "human")
    assert out.topic == "compliance" and out.priority is Priority.HIGH
    assert safety.check("how do I move my locked savings to spot", "en") is None  # a product's name


@pytest.mark.parametrize("text", [
    "if i lose my phone can someone get into my account", "要是有人知道我的密码会怎样",
    "what happens to my funds if my laptop gets stolen",
])
def test_a_what_if_read_as_theft_by_the_classifier_is_answered_as_security(text: str) -> None:
    out = ranked(text, [("theft_account_hacked", 0.85), ("deposit_how", 0.1)])
    assert out.action is Action.ANSWER and out.topic == "security" and out.reason == "nlu:hypothetical"


@pytest.mark.parametrize("text", [
    "I lost my phone, if someone gets in what happens", "if my account got hacked yesterday what do i do",
    "someone got into my account, what if they withdraw", "刚才有人登录了我的账户 如果他提币怎么办",
])
def test_a_what_if_after_an_incident_still_reaches_a_person(text: str) -> None:
    out = ranked(text, [("theft_account_hacked", 0.85), ("security_account_tips", 0.1)])
    assert out.action is Action.HANDOFF and out.topic == "theft"


@pytest.mark.parametrize("text", ["do i need to pay tax on my crypto gains", "加密货币要交税吗", "你们受哪个国家监管",
                                  "are you licensed"])
def test_a_general_tax_or_licence_question_is_not_a_compliance_case(text: str) -> None:
    out = ranked(text, [("compliance_source_of_funds", 0.62), ("deposit_how", 0.1)])
    assert out.action is Action.CLARIFY and out.topic == "out_of_scope"


@pytest.mark.parametrize("text", ["you asked me for my tax returns, why", "my withdrawal is on hold for a tax review",
                                  "税务局要求你们冻结我的账户吗"])
def test_tax_words_in_a_compliance_case_still_reach_a_person(text: str) -> None:
    out = ranked(text, [("compliance_source_of_funds", 0.62), ("deposit_how", 0.1)])
    assert out.action is Action.HANDOFF and out.topic == "compliance"


def test_is_this_you_about_a_call_is_a_phishing_question_not_a_compliance_case() -> None:
    out = ranked("is this you? +44 number calling me about my account", [("compliance_law_enforcement", 0.53)])
    assert out.action is Action.ANSWER and out.topic == "security"
    # a status the user states is still theirs
    out = ranked("my account is frozen, is this email real?", [("compliance_account_frozen", 0.8)])
    assert out.action is Action.HANDOFF and out.topic == "compliance"


# -- shown content: what the user points at, after their words as "> " lines ------------------------
SCAM_POST = "> ⚠️ Your account will be frozen within 24 hours!\n> Verify your wallet now: https://exch-verify.top\n> Support team"
SCAM_POST_ZH = "> 【紧急通知】您的账户将被冻结，请立即点击链接验证钱包：http://verify-exch.cc"


@pytest.mark.parametrize("own", ["is this real?", "legit?", "is this you?", "是真的吗", "真的假的", "@ExchSupportBot",
                                 "", "Is this one of your admins?", "what is this"])
@pytest.mark.parametrize("quoted", ["reply", "external", "quote_post"])
def test_asking_about_a_shown_post_gets_the_anti_phishing_answer(own: str, quoted: str) -> None:
    post = SCAM_POST_ZH if lang_of(own) == "zh" else SCAM_POST
    text = f"{own}\n\n{post}" if own else post
    out = ranked(text, [("compliance_account_frozen", 0.9)], quoted=quoted)
    assert out.action is Action.ANSWER and out.topic == "security" and out.reason == f"shown:{quoted}"
    assert ANSWERS.get("security_fake_support_phishing", lang_of(text)).strip() in out.reply


def test_without_quoted_the_same_text_is_read_as_before() -> None:
    out = ranked(f"lol\n\n{SCAM_POST}", [("compliance_account_frozen", 0.9)])
    assert out.action is Action.HANDOFF and out.topic == "compliance"


@pytest.mark.parametrize("own", ["what do you think", "lol these guys again", "how do I report this account?",
                                 "看看这个"])
def test_the_shown_posts_words_never_make_a_compliance_case_of_the_users_own(own: str) -> None:
    post = SCAM_POST_ZH if lang_of(own) == "zh" else SCAM_POST
    out = ranked(f"{own}\n\n{post}", [("compliance_account_frozen", 0.9), ("security_fake_support_phishing", 0.06)],
                 quoted="reply")
    assert out.action is not Action.HANDOFF, out.reason
    hacked = "> My account was hacked and all my USDT is gone, DM @recover_funds_pro to get it back"
    out = ranked(f"{own}\n\n{hacked}", [("security_fake_support_phishing", 0.9)], quoted="quote_post")
    assert out.action is not Action.HANDOFF, out.reason


@pytest.mark.parametrize("own", [
    "I clicked it and typed my seed phrase, is this real?", "someone just withdrew my BTC after I opened this",
    "same happened to me", "我也是 账户被冻结了", "我点了链接 输入了密码 现在币不见了",
    "my account is frozen since I got this, is it you?",
])
def test_the_users_own_words_of_an_incident_still_reach_a_person(own: str) -> None:
    post = SCAM_POST_ZH if lang_of(own) == "zh" else SCAM_POST
    out = ranked(f"{own}\n\n{post}", [("security_fake_support_phishing", 0.9)], quoted="reply")
    assert out.action is Action.HANDOFF and out.topic in ("theft", "compliance"), out.reason


def test_a_shown_post_with_a_seed_phrase_is_left_to_the_rules() -> None:
    red = redact("is this real?\n\n> free wallet with 5000 USDT, seed: " + " ".join(
        "abandon ability able about above absent absorb abstract absurd abuse access accident".split()))
    out = ranked(red.text, [("security_fake_support_phishing", 0.9)], quoted="reply", redactions=red.kinds)
    assert out.reason != "shown:reply"


def test_a_theft_reading_under_a_shown_post_without_a_question_stays_with_a_person() -> None:
    # "this is the guy who took my 5k": no rule sees it, the classifier does — a person reads it.
    out = ranked(f"this is the guy who took my 5k\n\n{SCAM_POST}", [("theft_scam_victim", 0.7)], quoted="reply")
    assert out.action is Action.HANDOFF and out.topic == "theft"


@pytest.mark.parametrize("text", ["what happens to my funds now that my account was hacked",
                                  "what happens if someone already drained my account",
                                  "I typed my seed phrase into the site, is this real?"])
def test_a_what_if_or_a_legit_check_after_an_incident_is_still_theft(text: str) -> None:
    assert safety.check(text, "en") is not None and safety.check(text, "en").topic == "theft"  # type: ignore[union-attr]
