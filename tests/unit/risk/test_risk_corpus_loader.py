"""The news-corpus loader (``caifu.risk.corpus``): every rule of the README is a ConfigError
naming the file and line, all problems at once; blank lines keep the numbering; the split is
by page; the digest follows the bytes. Written to tmp files, from a real corpus line
(rn-0002, and rn-0001 for a second page), never by editing the shipped corpus."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import pytest

from caifu.core.errors import ConfigError
from caifu.risk.corpus import MAX_CHARS, MAX_PER_PAGE, NewsCorpus, load_news_corpus
from caifu.text.corpus import split_of


def _line(key: str) -> dict:
    path = files("caifu.data").joinpath("risk", "corpus", "news.jsonl")
    return next(row for line in path.read_text(encoding="utf-8").splitlines()
                if (row := json.loads(line))["id"] == key)


GOOD = _line("rn-0002")  # ST中天 (600856) receives a 立案告知书
OTHER = _line("rn-0001")  # a chairman's 调查通知书, no company named


def _write(folder: Path, rows: list[object], name: str = "c.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _problems(folder: Path) -> str:
    with pytest.raises(ConfigError) as exc:
        load_news_corpus(folder)
    return str(exc.value)


def test_a_good_file_loads(tmp_path: Path) -> None:
    corpus = load_news_corpus(_write(tmp_path / "c", [GOOD, "", OTHER]))
    assert [i.id for i in corpus.items] == ["rn-0002", "rn-0001"]
    first, second = corpus.items
    assert first.source == "c.jsonl:1" and second.source == "c.jsonl:3"  # the blank line counts
    assert first.companies == (("ST中天", "600856"),) and first.codes == {"600856"}
    assert second.companies == () and second.codes == set()
    assert (first.event_type, first.polarity, first.script) == (
        "regulatory_investigation", "negative", "simplified")
    assert first.split == split_of(GOOD["url"])
    assert corpus.split(first.split)[0] is first
    assert first.text == GOOD["text"]


def test_every_rule_names_the_file_and_line(tmp_path: Path) -> None:
    g = GOOD
    rows: list[object] = [
        g,                                                                         # 1 fine
        "{not json",                                                               # 2
        ["a", "list"],                                                             # 3
        {k: v for k, v in g.items() if k != "url"} | {"id": "x-4", "source": "x"},  # 4
        {**g, "id": "x-5", "text": "立" * (MAX_CHARS + 1)},                         # 5
        {**g, "id": "x-6", "text": ""},                                            # 6
        {**g, "id": "x-7", "text": "x7", "companies": [], "url": "ftp://x/7"},     # 7
        {**g, "id": "x-8", "text": "x8", "companies": [], "script": "cantonese"},  # 8
        {**g, "id": "x-9", "text": "x9", "companies": [], "event_type": "fraud"},  # 9
        {**g, "id": "x-10", "text": "x10", "companies": [], "polarity": "bad"},    # 10
        {**g, "id": "x-11", "text": "x11", "companies": [{"name": "x11", "code": 600856}]},
        {**g, "id": "x-12", "text": "x12", "companies": [{"name": "x12", "code": "6008"}]},
        {**g, "id": "x-13", "text": "x13", "companies": {"name": "x13"}},         # 13
        {**g, "id": "x-14", "text": "x14", "companies": [{"name": "ST中天", "code": None}]},
        {**g, "id": "x-15", "text": "x15", "companies": [], "url": "ftp://x",
         "script": "cantonese"},                                                   # 15: two
    ]
    msg = _problems(_write(tmp_path / "c", rows))
    for expected in (
            "c.jsonl:2: not JSON (",
            "c.jsonl:3: not an object",
            "c.jsonl:4: missing ['url'] / unknown ['source'] fields",
            f"c.jsonl:5 (x-5): text must be 1..{MAX_CHARS} characters",
            "c.jsonl:6 (x-6): text must be 1..200 characters",
            "c.jsonl:7 (x-7): url must be an http(s) address",
            "c.jsonl:8 (x-8): script 'cantonese'",
            "c.jsonl:9 (x-9): event_type 'fraud' (one of regulatory_investigation, ",
            "c.jsonl:10 (x-10): polarity 'bad'",
            "c.jsonl:11 (x-11): companies must be [{name, code (6 digits or null)}]",
            "c.jsonl:12 (x-12): companies must be [{name, code (6 digits or null)}]",
            "c.jsonl:13 (x-13): companies must be [{name, code (6 digits or null)}]",
            "c.jsonl:14 (x-14): company 'ST中天' is not written in the text",
            "c.jsonl:15 (x-15): url must be an http(s) address; script 'cantonese'"):
        assert expected in msg, expected
    assert msg.startswith(f"risk corpus {tmp_path / 'c'}: 14 problem(s):")
    assert "c.jsonl:1:" not in msg and "c.jsonl:1 (" not in msg


def test_the_problems_of_several_files_are_listed_together(tmp_path: Path) -> None:
    folder = _write(tmp_path / "c", [GOOD, "{"], name="a.jsonl")
    _write(folder, [{**OTHER, "polarity": "grim"}], name="b.jsonl")
    (folder / "notes.txt").write_text("{", encoding="utf-8")  # not a corpus file
    msg = _problems(folder)
    assert "2 problem(s)" in msg and "a.jsonl:2: not JSON" in msg
    assert "b.jsonl:1 (rn-0001): polarity 'grim'" in msg


def test_more_than_25_problems_are_counted_not_all_shown(tmp_path: Path) -> None:
    msg = _problems(_write(tmp_path / "c", ["{"] * 30))
    assert msg.startswith(f"risk corpus {tmp_path / 'c'}: 30 problem(s)")
    assert "c.jsonl:25: not JSON" in msg and "c.jsonl:26:" not in msg
    assert msg.endswith("… and 5 more")


def test_repeated_ids_and_texts_and_crowded_pages(tmp_path: Path) -> None:
    rows = [GOOD, {**GOOD, "id": "x-2"}, {**OTHER, "id": GOOD["id"]}]
    msg = _problems(_write(tmp_path / "c", rows))
    assert f"the same id '{GOOD['id']}' is at c.jsonl:1, c.jsonl:3" in msg
    assert f"the same text {GOOD['text']!r} is at c.jsonl:1, c.jsonl:2" in msg
    page = [{**OTHER, "id": f"p-{n}", "text": f"{OTHER['text']}{n}"}
            for n in range(MAX_PER_PAGE + 1)]
    msg = _problems(_write(tmp_path / "d", page))
    assert f"{MAX_PER_PAGE + 1} lines from one page (at most {MAX_PER_PAGE})" in msg
    assert len(load_news_corpus(_write(tmp_path / "e", page[:MAX_PER_PAGE])).items) == \
        MAX_PER_PAGE


def test_a_repeated_id_names_both_lines(tmp_path: Path) -> None:
    msg = _problems(_write(tmp_path / "c", [GOOD, {**OTHER, "id": GOOD["id"]}]))
    assert "c.jsonl:2" in msg and "c.jsonl:1" in msg


def test_a_code_must_be_six_digits(tmp_path: Path) -> None:
    row = {**GOOD, "companies": [{"name": "ST中天", "code": "60085X"}]}
    msg = _problems(_write(tmp_path / "c", [row]))
    assert "c.jsonl:1 (rn-0002): companies must be" in msg


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "README.md").write_text("# corpus", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no \*\.jsonl corpus files"):
        load_news_corpus(tmp_path / "c")


def test_the_digest_follows_names_and_bytes(tmp_path: Path) -> None:
    one = load_news_corpus(_write(tmp_path / "a", [GOOD, OTHER]))
    assert one.digest == load_news_corpus(_write(tmp_path / "b", [GOOD, OTHER])).digest
    renamed = load_news_corpus(_write(tmp_path / "c", [GOOD, OTHER], name="d.jsonl"))
    assert renamed.digest != one.digest
    reordered = load_news_corpus(_write(tmp_path / "e", [OTHER, GOOD]))
    assert reordered.digest != one.digest
    assert sorted(i.id for i in reordered.items) == sorted(i.id for i in one.items)


def test_the_shipped_corpus_digest_is_the_models() -> None:
    corpus: NewsCorpus = load_news_corpus()
    manifest = json.loads(files("caifu.data").joinpath("risk", "model", "manifest.json")
                          .read_text(encoding="utf-8"))
    assert corpus.digest == manifest["corpus_sha256"]
    assert len(corpus.split("train")) == manifest["train_items"]
    assert len(corpus.split("dev")) == manifest["dev_items"]
