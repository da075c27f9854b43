"""The agent console's languages: every message in every catalogue, every key the code asks for
present, every error code the API can send translated, and no text in the console's code that
bypasses the catalogues (each check also shown failing on a sample)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from bot.models import TOPICS
from tests.conftest import ROOT
from tests.unit.i18n_check import catalogue_problems, html_text_problems, js_text_problems

STATIC = ROOT / "handoff" / "static"
I18N = STATIC / "i18n"


def load() -> dict[str, dict[str, Any]]:
    langs = json.loads((I18N / "languages.json").read_text(encoding="utf-8"))["languages"]
    return {lang["code"]: json.loads((I18N / f"{lang['code']}.json").read_text(encoding="utf-8")) for lang in langs}


CATS = load()
JS = (STATIC / "console.js").read_text(encoding="utf-8")
PAGES = {name: (STATIC / name).read_text(encoding="utf-8") for name in ("console.html", "login.html")}


def test_chinese_and_english_are_offered_and_every_language_has_every_key() -> None:
    assert {"en", "zh"} <= set(CATS)
    assert catalogue_problems(CATS) == []


def test_the_catalogue_check_fails_on_a_missing_key_or_a_lost_placeholder() -> None:
    broken = copy.deepcopy(CATS)
    del broken["zh"]["action.claim"]
    broken["zh"]["sla.left"] = "剩余时间"  # {dur} lost: the agent would never see how long
    broken["zh"]["bulk.changed"] = {"one": "{n}"}  # no 'other' form
    problems = catalogue_problems(broken)
    assert "zh: missing key 'action.claim'" in problems
    assert any("'sla.left'" in p and "drops every parameter" in p for p in problems)
    assert any("'bulk.changed'" in p and "'other'" in p for p in problems)


def _keys_in_code() -> set[str]:
    keys = set(re.findall(r"\btr\('([^']+)'", JS))
    keys |= {k for a, b in re.findall(r"\btr\([^()']*?\?\s*'([^']+)'\s*:\s*'([^']+)'", JS) for k in (a, b)}
    for page in PAGES.values():
        keys |= set(re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', page))
    return keys


def _expanded_keys() -> set[str]:
    """Keys the code builds from a name (`view.${S.view}`): every name it can build them from."""
    views = ("queue", "mine", "all", "resolved")
    keys = {f"view.{v}" for v in views} | {f"view.{v}.sub" for v in views}
    keys |= {f"topic.{t}" for t in TOPICS}
    keys |= {f"priority.{p}" for p in ("urgent", "high", "normal", "low")}
    keys |= {f"status.{s}" for s in ("new", "open", "pending_user", "resolved", "closed")}
    keys |= {f"sla.state.{s}" for s in ("ok", "warning", "breached")}
    keys |= {f"sla.due.{k}" for k in ("firstResponse", "resolution")}
    keys |= {f"bulk.action.{a}" for a in ("assign", "priority", "tag", "resolve", "spam", "incident")}
    keys |= {f"bulk.done.{a}" for a in ("assign", "priority", "tag", "resolve", "spam", "incident")}
    keys |= {f"incident.{p}.{m}" for p in ("lead", "submit") for m in ("new", "update", "resolve")}
    keys |= {f"incident.dlg.{m}" for m in ("update", "resolve")} | {"incident.status.active", "incident.status.resolved"}
    keys |= {f"login.error.{e}.{p}" for e in ("invalid", "locked", "disabled", "csrf", "expired", "failed")
             for p in ("head", "tail")}
    keys |= {f"lang.{k}.{c}" for k in ("short", "name") for c in ("en", "zh")}
    keys |= {f"channel.{c}" for c in ("telegram", "twitter", "email", "web")}
    keys |= {f"preview.{a}" for a in ("bot", "agent")} | {"role.agent", "role.supervisor"}
    keys |= {f"audit.actor.{a}" for a in ("system", "bot", "user")}
    keys |= {"conn.live", "conn.connecting", "conn.reconnecting"}
    from bot.redact import API_SECRET, OTP, PASSWORD, PRIVATE_KEY, SEED
    keys |= {f"redacted.kind.{k}" for k in (SEED, PRIVATE_KEY, API_SECRET, PASSWORD, OTP)}
    shortcuts = re.search(r"const SHORTCUTS = \[(.*?)\n  \];", JS, re.S)
    assert shortcuts
    for section, body in re.findall(r"\['(\w+)', \[(.*?)\]\]", shortcuts.group(1)):
        keys.add(f"help.{section}")
        keys |= {f"help.{section}.{label}" for label in re.findall(r"\['[^']*', '(\w+)'\]", body)}
    return keys


def test_every_key_the_console_asks_for_is_in_the_catalogue() -> None:
    asked = _keys_in_code() | _expanded_keys()
    assert len(asked) > 250
    assert sorted(asked - set(CATS["en"])) == []


RAISE = re.compile(r"(?:ApiError|TicketError|NotFound|Conflict|Forbidden)\((.*?)\)(?: from None)?\n", re.S)
CODE_ARG = re.compile(r",\s*\"([a-z_]+)\"\s*(?:,|$)")  # the code: a snake_case literal after the message


def _error_codes() -> set[str]:
    """Every `code` the console API can send (ApiError, TicketError and its subclasses' defaults)."""
    codes: set[str] = set()
    for path in (ROOT / "handoff").glob("*.py"):
        src = path.read_text(encoding="utf-8")
        codes |= {m.group(1) for r in RAISE.finditer(src) if (m := CODE_ARG.search(r.group(1)))}
        codes |= set(re.findall(r"default_code = \"(\w+)\"", src))
        codes |= set(re.findall(r"\"code\": \"(\w+)\"", src))
    return codes


def test_every_error_code_of_the_api_is_translated() -> None:
    codes = _error_codes()
    assert {"sign_in", "ticket_not_found", "already_claimed", "assigned_elsewhere", "bulk_reply_languages",
            "locale_invalid", "priority_invalid", "bad_request", "not_found", "conflict", "forbidden"} <= codes
    assert sorted(c for c in codes if f"error.{c}" not in CATS["en"]) == []


def test_every_refusal_raised_carries_a_code() -> None:
    """A refusal without its own code would show the agent only the generic text of its class."""
    uncoded = []
    for path in (ROOT / "handoff").glob("*.py"):
        src = path.read_text(encoding="utf-8")
        for m in re.finditer(r"raise (?:ApiError|TicketError|NotFound|Conflict|Forbidden)\((.*?)\)(?: from None)?\n", src, re.S):
            if not CODE_ARG.search(m.group(1)) and "e.code" not in m.group(1):  # passing a TicketError's on
                uncoded.append(f"{path.name}: {m.group(0).strip()[:100]}")
    assert uncoded == []


def test_no_user_visible_text_is_hard_coded_in_the_console() -> None:
    assert js_text_problems(JS) == []
    for name, page in PAGES.items():
        assert html_text_problems(page) == [], name


@pytest.mark.parametrize("snippet", [
    "h('span', { text: 'Hello there' })",
    "h('p', null, 'No tickets yet')",
    "toast('Saved');",
    "el.textContent = 'done';",
    "h('b', { text: a.online ? 'online' : 'offline' })",
    "const m = `${n} tickets left`;",
    "throw new ApiError(400, 'bad');",
    "h('i', { title: 'Intent' })",
    "x = '已解决';",
])
def test_the_scan_catches_a_new_hard_coded_string(snippet: str) -> None:
    assert js_text_problems(JS + "\n" + snippet + "\n"), snippet


@pytest.mark.parametrize("snippet", [
    "h('div', { class: 'row skeleton' })",
    "if (e.key === 'Escape') close();",
    "$('#ticket-list').addEventListener('scroll', f);",
    "h('span', { text: tr('action.claim') })",
    "const re = /it's [a-z]+ \"Quoted\"/g;",
])
def test_the_scan_leaves_names_for_the_program_alone(snippet: str) -> None:
    assert js_text_problems(snippet) == [], snippet


@pytest.mark.parametrize("snippet", [
    "<button type='button'>Apply</button>",
    "<input placeholder='Search tickets'>",
    "<span title='Sign out'></span>",
    "<option value='x'>Any status</option>",
    "<p>处理中</p>",
])
def test_the_page_scan_catches_hard_coded_text(snippet: str) -> None:
    assert html_text_problems(PAGES["console.html"].replace("</body>", snippet + "</body>")), snippet


def test_canned_answers_carry_both_languages_and_titles_for_both_interfaces() -> None:
    import yaml

    items = yaml.safe_load((ROOT / "handoff" / "canned.yml").read_text(encoding="utf-8"))
    for it in items:
        assert it["en"].strip() and it["zh"].strip(), it["key"]
        assert set(it["title"]) >= set(CATS), it["key"]


def test_the_server_negotiates_the_language_like_the_browser() -> None:
    from handoff import i18n

    assert i18n.negotiate(None, "zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert i18n.negotiate(None, "fr-FR, en;q=0.5, zh;q=0.7") == "zh"  # by weight, not order
    assert i18n.negotiate(None, "fr-FR") == "en"
    assert i18n.negotiate("en", "zh-CN") == "en"  # the agent's own choice wins
    assert i18n.negotiate("tlh", None) == "en"  # a language that is no longer offered
    assert i18n.text("zh", "review.groups", n=3) == "3 组。"


def test_catalogue_files_are_plain_json_objects(tmp_path: Path) -> None:
    for code in CATS:
        raw = (I18N / f"{code}.json").read_text(encoding="utf-8")
        assert isinstance(json.loads(raw), dict)


def test_texts_the_product_writes_into_threads_are_translated() -> None:
    """Delivery notes and "deleted by the user" are written by the product: the console shows them
    in the agent's language, by the code the API sends with them (English as the server wrote it)."""
    from handoff.service import TEXT_CODES

    assert len(TEXT_CODES) >= 3
    for text, code in TEXT_CODES.items():
        assert CATS["en"][f"message.code.{code}"] == text
        assert all(f"message.code.{code}" in cat for cat in CATS.values())
