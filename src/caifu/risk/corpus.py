"""The labelled risk-news corpus (``caifu/data/risk/corpus/*.jsonl``; format and labelling guide
in its README): loaded, checked line by line, split by page.

The split is the chat corpus's (``caifu.text.corpus.split_of``: a hash of the canonical URL,
70/15/15), so no page is in two splits and adding a line moves no other line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from caifu.core.errors import ConfigError
from caifu.risk.alerts import EVENT_TYPES, POLARITIES
from caifu.text.corpus import canonical_url, split_of

__all__ = ["NewsCorpus", "NewsItem", "load_news_corpus", "packaged_news_dir"]

MAX_CHARS = 200
MAX_PER_PAGE = 6
_FIELDS = {"id", "text", "url", "script", "event_type", "polarity", "companies"}
_OPTIONAL = {"note"}


@dataclass(frozen=True)
class NewsItem:
    id: str
    text: str
    url: str
    script: str
    event_type: str
    polarity: str
    companies: tuple[tuple[str, str | None], ...]  # (name as written, code or None)
    source: str  # file:line

    @property
    def split(self) -> str:
        return split_of(self.url)

    @property
    def codes(self) -> set[str]:
        return {code for _, code in self.companies if code}


@dataclass(frozen=True)
class NewsCorpus:
    items: tuple[NewsItem, ...]
    digest: str  # SHA-256 over the files' bytes, in name order

    def split(self, name: str) -> list[NewsItem]:
        return [i for i in self.items if i.split == name]


def packaged_news_dir() -> Traversable:
    return files("caifu.data").joinpath("risk", "corpus")


def load_news_corpus(directory: Path | Traversable | None = None) -> NewsCorpus:
    """Every ``*.jsonl`` of ``directory`` (the packaged corpus if None), checked: a bad line
    is a ConfigError naming the file, the line and the rule (all problems at once)."""
    where = directory if directory is not None else packaged_news_dir()
    named = sorted(((f.name, f.read_bytes()) for f in where.iterdir()
                    if f.name.endswith(".jsonl")), key=lambda x: x[0])
    if not named:
        raise ConfigError(f"{where}: no *.jsonl corpus files")
    digest = hashlib.sha256()
    items, problems = [], []
    for name, data in named:
        digest.update(name.encode() + b"\0" + data + b"\0")
        for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
            if line.strip():
                item = _item(line, f"{name}:{n}", problems)
                if item is not None:
                    items.append(item)
    for what, key in (("id", lambda i: i.id), ("text", lambda i: i.text)):
        where_of: dict[str, list[str]] = {}
        for i in items:
            where_of.setdefault(key(i), []).append(i.source)
        problems += [f"the same {what} {k!r} is at {', '.join(at)}"
                     for k, at in where_of.items() if len(at) > 1]
    pages = Counter(canonical_url(i.url) for i in items)
    problems += [f"{url}: {v} lines from one page (at most {MAX_PER_PAGE})"
                 for url, v in pages.items() if v > MAX_PER_PAGE]
    if problems:
        shown = "\n  ".join(problems[:25])
        more = f"\n  … and {len(problems) - 25} more" if len(problems) > 25 else ""
        raise ConfigError(f"risk corpus {where}: {len(problems)} problem(s):\n  {shown}{more}")
    return NewsCorpus(tuple(items), digest.hexdigest())


def _item(line: str, where: str, problems: list[str]) -> NewsItem | None:
    try:
        raw: Any = json.loads(line)
    except json.JSONDecodeError as e:
        problems.append(f"{where}: not JSON ({e.msg})")
        return None
    if not isinstance(raw, dict):
        problems.append(f"{where}: not an object")
        return None
    missing, extra = _FIELDS - set(raw), set(raw) - _FIELDS - _OPTIONAL
    if missing or extra:
        problems.append(f"{where}: missing {sorted(missing)} / unknown {sorted(extra)} fields")
        return None
    text, url = raw["text"], raw["url"]
    bad = []
    if not isinstance(text, str) or not 0 < len(text) <= MAX_CHARS:
        bad.append(f"text must be 1..{MAX_CHARS} characters")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        bad.append("url must be an http(s) address")
    if raw["script"] not in ("simplified", "traditional"):
        bad.append(f"script {raw['script']!r}")
    if raw["event_type"] not in EVENT_TYPES:
        bad.append(f"event_type {raw['event_type']!r} (one of {', '.join(EVENT_TYPES)})")
    if raw["polarity"] not in POLARITIES:
        bad.append(f"polarity {raw['polarity']!r}")
    companies = raw["companies"]
    if not isinstance(companies, list) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str)
            and (c.get("code") is None or (isinstance(c["code"], str)
                                           and re.fullmatch(r"[0-9]{6}", c["code"]) is not None))
            for c in companies):
        bad.append("companies must be [{name, code (6 digits or null)}]")
    elif isinstance(text, str):
        bad += [f"company {c['name']!r} is not written in the text" for c in companies
                if c["name"] not in text]
    if bad:
        problems.append(f"{where} ({raw.get('id')}): " + "; ".join(bad))
        return None
    return NewsItem(str(raw["id"]), text, url, raw["script"], raw["event_type"],
                    raw["polarity"], tuple((c["name"], c.get("code")) for c in companies),
                    where)
