"""The corpus loader: every README rule, and a split by page that never changes."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from caifu.core.errors import ConfigError
from caifu.text.corpus import Corpus, canonical_url, load_corpus, load_examples, split_of
from caifu.text.taxonomy import default_taxonomy
from tests.unit.text.conftest import FIXTURE


def _first(name: str) -> dict:
    return json.loads((FIXTURE / name).read_text(encoding="utf-8").splitlines()[0])


def test_split_is_pinned_to_the_address() -> None:
    # pinned: sha256 of the canonical address, first 8 bytes mod 100 (<70 train, <85 dev)
    assert split_of("http://gamebaike.com/new/720316429303292928") == "train"
    assert split_of("https://licai.jiantou8.com/ask/vipqa_2114380_21470082.html") == "dev"
    assert split_of("https://zlglobal.htsc.com.hk/zl/course/stock-fund-redemption") == "test"
    page = "https://licai.jiantou8.com/ask/vipqa_2114380_21470082.html"
    digest = hashlib.sha256(canonical_url(page).encode()).digest()
    assert int.from_bytes(digest[:8], "big") % 100 in range(70, 85)
    # the same page written differently is the same page
    for variant in ("http://licai.jiantou8.com/ask/vipqa_2114380_21470082.html",
                    "https://www.licai.jiantou8.com/ask/vipqa_2114380_21470082.html#top",
                    " https://LICAI.jiantou8.com/ask/vipqa_2114380_21470082.html/ "):
        assert canonical_url(variant) == canonical_url(page)
        assert split_of(variant) == "dev"


def test_split_proportions() -> None:
    counts = Counter(split_of(f"https://example.org/page/{n}") for n in range(20_000))
    assert abs(counts["train"] / 20_000 - 0.70) < 0.015
    assert abs(counts["dev"] / 20_000 - 0.15) < 0.015
    assert abs(counts["test"] / 20_000 - 0.15) < 0.015


def test_no_page_in_two_splits(fixture_corpus: Corpus) -> None:
    splits: dict[str, set[str]] = defaultdict(set)
    for item in fixture_corpus.items:
        splits[canonical_url(item.url)].add(item.split)
    assert all(len(s) == 1 for s in splits.values())
    assert max(Counter(canonical_url(i.url) for i in fixture_corpus.items).values()) > 1
    assert {i.split for i in fixture_corpus.items} == {"train", "dev", "test"}
    again = load_corpus(FIXTURE, default_taxonomy())
    assert [(i.id, i.split) for i in again.items] == [(i.id, i.split) for i in fixture_corpus.items]
    assert again.digest == fixture_corpus.digest


def _write(folder: Path, rows: list[object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    (folder / "c.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_every_rule_is_checked_with_file_and_line(tmp_path: Path) -> None:
    good = _first("customer_questions.jsonl")
    adv = _first("advisor.jsonl")
    rows: list[object] = [
        good,                                                             # 1 fine
        "{not json",                                                      # 2
        {**good, "id": "x-2", "text": good["text"] * 20},                 # 3 too long
        {**good, "id": "x-3"},                                            # 4 same text as 1
        {**adv, "id": good["id"]},                                        # 5 same id as 1
        {**good, "id": "x-5", "text": "x5", "labels": {**good["labels"], "intents": ["buy"]}},
        {**adv, "id": "x-6", "text": "x6", "labels": {**adv["labels"], "interests": ["fund"]}},
        {**good, "id": "x-7", "text": "x7", "script": "cantonese"},       # 8
        {**good, "id": "x-8", "text": "x8", "url": "ftp://x"},            # 9
        {k: v for k, v in good.items() if k != "url"} | {"id": "x-9"},    # 10
    ]
    with pytest.raises(ConfigError) as exc:
        load_corpus(_write(tmp_path / "c", rows), default_taxonomy())
    msg = str(exc.value)
    for expected in ("c.jsonl:2: not JSON", "c.jsonl:3: text: ", "characters, at most 150",
                     "c.jsonl:4: text: the same text is at c.jsonl:1",
                     f"c.jsonl:5: id: '{good['id']}' already used at c.jsonl:1",
                     "c.jsonl:6: labels.intents: ['buy'] not in the taxonomy's intents",
                     "c.jsonl:7: labels.interests: must be empty for an advisor message",
                     "c.jsonl:8: script: expected simplified or traditional",
                     "c.jsonl:9: url: expected an http(s) address",
                     "c.jsonl:10: missing field(s) ['url']"):
        assert expected in msg, expected
    assert msg.startswith("corpus: 9 problem(s)")


def test_at_most_eight_snippets_per_page(tmp_path: Path) -> None:
    good = _first("customer_questions.jsonl")
    rows = [{**good, "id": f"p-{n}", "text": f"{good['text']}{n}"} for n in range(9)]
    with pytest.raises(ConfigError, match=r"9 snippets from one page, at most 8"):
        load_corpus(_write(tmp_path / "c", rows), default_taxonomy())
    assert len(load_corpus(_write(tmp_path / "d", rows[:8]), default_taxonomy()).items) == 8


def test_tenant_examples_join_train(tmp_path: Path, fixture_corpus: Corpus) -> None:
    # a test-split line, given again by a tenant under its own id, is training data for it
    test_item = next(i for i in fixture_corpus.items if i.split == "test")
    line = next(json.loads(x) for p in FIXTURE.glob("*.jsonl")
                for x in p.read_text(encoding="utf-8").splitlines()
                if json.loads(x)["id"] == test_item.id)
    path = tmp_path / "examples.jsonl"
    path.write_text(json.dumps({**line, "id": "acme-1", "text": line["text"] + "!"},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    merged = fixture_corpus.with_examples(load_examples(path, default_taxonomy()))
    added = merged.items[-1]
    assert added.id == "acme-1" and added.tenant and added.split == "train"
    assert len(merged.split("train")) == len(fixture_corpus.split("train")) + 1
    assert merged.digest != fixture_corpus.digest
    path.write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"id: '{test_item.id}' is already in the corpus"):
        fixture_corpus.with_examples(load_examples(path, default_taxonomy()))
