"""Help-centre articles are data: `help/<topic>/<slug>.md`, one article in both languages.

Each file starts with YAML front matter (`id`, `topic`, `intents`, `title: {en, zh}`), then the
English body after `<!-- lang: en -->` and the Chinese body after `<!-- lang: zh -->`, in
Markdown. The bot links an answer to the article tagged with its intent ("Read more"); the help
centre (handoff.helpcentre) serves and searches them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import yaml

LANGS = ("en", "zh")
_FRONT = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.S)
_LANG = re.compile(r"^<!-- lang: (en|zh) -->\s*$", re.M)
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,80}$")

READ_MORE = {"en": "Read more: {url}", "zh": "详细说明：{url}"}


@dataclass(frozen=True)
class Article:
    id: str
    topic: str
    intents: tuple[str, ...]
    title: dict[str, str]
    body: dict[str, str]  # Markdown per language
    path: Path


def parse_article(path: Path) -> Article:
    """One article file; ValueError naming the file on anything missing or malformed."""
    m = _FRONT.match(path.read_text(encoding="utf-8"))
    if not m:
        raise ValueError(f"{path}: needs YAML front matter between '---' lines")
    try:
        front = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: front matter is not valid YAML ({e})") from None
    aid, topic, title = front.get("id"), front.get("topic"), front.get("title") or {}
    if not isinstance(aid, str) or not _ID.match(aid):
        raise ValueError(f"{path}: id must be lowercase letters, digits and dashes")
    if not isinstance(topic, str) or path.parent.name != topic:
        raise ValueError(f"{path}: topic must name the folder it is in")
    parts = _LANG.split(m.group(2))
    body = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    for lang in LANGS:
        if not str(title.get(lang) or "").strip():
            raise ValueError(f"{path}: title.{lang} is missing")
        if not body.get(lang):
            raise ValueError(f"{path}: the {lang} text is missing (after '<!-- lang: {lang} -->')")
    intents = front.get("intents") or []
    if not isinstance(intents, list) or not all(isinstance(i, str) for i in intents):
        raise ValueError(f"{path}: intents must be a list of intent names")
    return Article(aid, topic, tuple(intents), {k: str(title[k]).strip() for k in LANGS}, body, path)


@dataclass
class HelpArticles:
    root: Path
    articles: dict[str, Article] = field(default_factory=dict)
    by_intent: dict[str, Article] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for path in sorted(self.root.glob("*/*.md")):
            a = parse_article(path)
            if a.id in self.articles:
                raise ValueError(f"{path}: id {a.id} is also used by {self.articles[a.id].path}")
            self.articles[a.id] = a
            for i in a.intents:
                self.by_intent.setdefault(i, a)

    def topics(self) -> dict[str, list[Article]]:
        out: dict[str, list[Article]] = {}
        for a in self.articles.values():
            out.setdefault(a.topic, []).append(a)
        return out


@dataclass
class ReadMore:
    """The "Read more" line for an answer: the article tagged with the intent, on the public URL."""

    articles: HelpArticles
    public_url: str

    def url(self, article_id: str, lang: str) -> str:
        return f"{self.public_url.rstrip('/')}/help/a/{quote(article_id)}?lang={'zh' if lang == 'zh' else 'en'}"

    def line(self, intent: str | None, lang: str) -> str | None:
        a = self.articles.by_intent.get(intent or "")
        if a is None:
            return None
        return READ_MORE["zh" if lang == "zh" else "en"].format(url=self.url(a.id, lang))
