"""The review queue shows (and lets ops accept into the training data) only redacted text — also
for decisions logged before the current engine, which may hold what an older one let through."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from app.review import gather
from bot.models import Action, Decision, Priority
from bot.router import DECISIONS_STREAM
from tests.conftest import make_settings

pytestmark = [pytest.mark.redis]

OLD = [  # as the old engine stored them (issue #16): in clear
    "my password is correct horse battery staple, why is the login failing",
    "我的登录密码Abc12345，谷歌验证码现在是 483920 为什么登不上",
]


async def test_review_queue_texts_are_redacted_with_todays_engine(aredis: aioredis.Redis, tmp_path: Path) -> None:
    s = make_settings(database={"url": f"sqlite+aiosqlite:///{tmp_path}/t.db"})
    for i, text in enumerate(OLD):
        d = Decision(message_id=f"m{i}", conversation_id=f"web:r{i}", channel="web", action=Action.CLARIFY,
                     topic="out_of_scope", intent="nlu_fallback", confidence=0.1, priority=Priority.LOW, reply="?",
                     lang="zh" if i else "en", redacted_text=text)
        await aredis.xadd(DECISIONS_STREAM, {"d": d.to_json()})
    groups = await gather(s)
    shown = " | ".join(g.text for g in groups) + " | " + " | ".join(e for g in groups for e in g.examples)
    assert "[REDACTED:password]" in shown and "[REDACTED:otp]" in shown, shown
    for secret in ("horse battery staple", "Abc12345", "483920"):
        assert secret not in shown
