"""The labelled risk-news corpus (src/caifu/data/risk/corpus, guide in its README): its rules,
and the company linker measured on it — text the linker was not written from (it was built
on tests/unit/risk/fixtures/headlines.jsonl before this corpus existed)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from importlib.resources import files

from caifu.text.companies import CompanyLinker

CLASSES = {"regulatory_investigation", "administrative_penalty", "share_pledge_risk",
           "shareholder_reduction", "bond_default", "delisting_risk", "audit_qualified_opinion",
           "executive_detained", "major_litigation", "earnings_warning", "none"}


def _corpus() -> list[dict]:
    folder = files("caifu.data").joinpath("risk", "corpus")
    return [json.loads(line) for f in sorted(folder.iterdir(), key=lambda p: p.name)
            if f.name.endswith(".jsonl")
            for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_line_follows_the_guide() -> None:
    rows = _corpus()
    codes = {r["stock_code"] for name in ("a_share_codes.csv", "a_share_names_2026.csv")
             for r in csv.DictReader(files("caifu.data.reference").joinpath(name).open(
                 encoding="utf-8"))}
    assert len(rows) >= 600
    assert len({r["id"] for r in rows}) == len(rows) == len({r["text"] for r in rows})
    assert max(Counter(r["url"] for r in rows).values()) <= 6
    for r in rows:
        assert set(r) <= {"id", "text", "url", "script", "event_type", "polarity",
                          "companies", "note"}, r["id"]
        assert 0 < len(r["text"]) <= 200 and r["url"].startswith("http"), r["id"]
        assert r["event_type"] in CLASSES and r["polarity"] in {"negative", "neutral",
                                                                 "positive"}, r["id"]
        assert r["script"] in {"simplified", "traditional"}, r["id"]
        for c in r["companies"]:
            assert c["name"] in r["text"], (r["id"], c["name"])  # as written
            assert c["code"] is None or c["code"] in codes, (r["id"], c["code"])
    by_class = Counter(r["event_type"] for r in rows)
    assert min(by_class.values()) >= 40 and by_class["none"] >= 120


def test_company_linking_on_the_corpus() -> None:
    """Listed companies per document (codes), linked vs labelled. With the 2023 list only:
    P 0.979, R 0.830 on the first 600 lines; with the 2026 names as well (1,146 lines): P 0.981,
    R 0.864 (F1 0.917; issue 15's goal is 0.95) — the misses are names neither list has
    (renamed before 2023: 金刚玻璃, 雏鹰农牧; registered names: 上海研华智能科技股份有限公司)
    and text with pinyin glosses inside names (未名醫(yī)藥)."""
    linker = CompanyLinker()
    tp = fp = fn = 0
    for r in _corpus():
        truth = {c["code"] for c in r["companies"] if c["code"]}
        got = {m.code for m in linker.link(r["text"]) if m.listed and m.code}
        tp, fp, fn = tp + len(truth & got), fp + len(got - truth), fn + len(truth - got)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert precision >= 0.95 and recall >= 0.85, (precision, recall)
