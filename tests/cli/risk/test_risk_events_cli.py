"""``caifu risk classify | evaluate`` with the shipped model: JSON Lines in and out (a file or
stdin; bad lines reported with their numbers, good lines still written), a tenant's former
names linked only with ``-t -w``, the evaluation report's shape and its quality gate.

The documents are verbatim lines of the shipped corpus (ids in the comments)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from caifu.cli import app
from caifu.risk.events import CLASSES, EventModel, load_lexicon

runner = CliRunner(env={"COLUMNS": "200"})

# rn-0002: ST中天 (600856.SH) receives a 立案告知书
INVESTIGATION = ("智通财经APP讯,ST中天(600856.SH)公告,公司于2021年9月18日收到中国证券监督管理委员会"
                 "(“中国证监会”)《立案告知书》“因涉嫌信息披露违法违规,根据《中华人民共和国证券法》"
                 "《中华人民共和国行政处罚法》等法律法规,2021年9月1日,我会决定对你单位立案”。")
# rm-0092: traditional, full-width forms; 萬科 expects a loss
LOSS = "異動股｜萬科挫近7％，料去年虧損額擴大至最多820億元人民幣將創紀錄"
# rn-0503: ST大洲 — the former short name of 000571, which the shipped list does not know
LAWSUIT = ("9月28日盘后,ST大洲发布公告称,有8份证券虚假陈述责任纠纷诉讼案件一审宣判,公司需承担"
           "赔偿投资者损失、案件受理费等合计金额约为6.95万元。")
FIELDS = {"id", "companies", "event_type", "polarity", "severity", "evidence"}
COMPANY = {"name", "code", "listed", "start", "end", "rule", "score"}


def _jsonl(*rows: object) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)
                     for r in rows) + "\n"


def _check_shape(row: dict, text: str) -> None:
    assert set(row) == FIELDS
    assert row["event_type"] in CLASSES
    assert row["polarity"] in ("negative", "neutral", "positive")
    assert set(row["evidence"]) >= {"probability", "sentence", "sentence_span", "lexicon",
                                    "ngrams", "decided_by", "model_version"}
    a, b = row["evidence"]["sentence_span"]
    assert row["evidence"]["sentence"] == text[a:b].strip()
    for c in row["companies"]:
        assert set(c) == COMPANY
        assert text[c["start"]:c["end"]] == c["name"]  # as written
        assert c["code"] is None or (len(c["code"]) == 6 and c["code"].isdigit())
        assert isinstance(c["listed"], bool) and (c["code"] is None or c["listed"])


def test_classify_a_file_reports_bad_lines_and_writes_the_good_ones(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(_jsonl({"id": "rn-0002", "text": INVESTIGATION}, "not json", {"id": "x3"},
                          "", {"id": 7, "text": LOSS}, {"id": True, "text": LOSS},
                          {"id": "x7", "text": ["a"]}), encoding="utf-8")
    r = runner.invoke(app, ["risk", "classify", str(src)])
    assert r.exit_code == 1, r.output
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert [o["id"] for o in out] == ["rn-0002", 7]
    first, second = out
    _check_shape(first, INVESTIGATION)
    _check_shape(second, LOSS)
    assert (first["event_type"], first["polarity"], first["severity"]) == (
        "regulatory_investigation", "negative", "high")
    assert [(c["name"], c["code"], c["listed"]) for c in first["companies"]] == [
        ("ST中天", "600856", True), ("600856.SH", "600856", True)]  # the name and the code
    assert (second["event_type"], second["severity"]) == ("earnings_warning", "medium")
    assert second["evidence"]["lexicon"] == [
        {"group": "earnings_warning", "phrase": "亏损", "start": 14, "end": 16}]
    for problem in ("line 2: not JSON", "line 3: missing text",
                    "line 6: id must be a string or an integer",
                    "line 7: text must be a string, got list",
                    "2 document(s) classified, 4 bad line(s) skipped"):
        assert problem in r.stderr, problem


def test_classify_reads_stdin() -> None:
    r = runner.invoke(app, ["risk", "classify"],
                      input=_jsonl({"id": "a", "text": LOSS}, {"id": "b", "text": INVESTIGATION}))
    assert r.exit_code == 0, r.output
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(o["id"], o["event_type"]) for o in out] == [
        ("a", "earnings_warning"), ("b", "regulatory_investigation")]
    assert "2 document(s) classified, 0 bad line(s) skipped" in r.stderr
    missing = runner.invoke(app, ["risk", "classify", "nowhere.jsonl"])
    assert missing.exit_code == 2 and "no such file" in missing.stderr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("ws")
    ws = str(root / "ws")
    assert runner.invoke(app, ["init", ws]).exit_code == 0
    for tenant in ("acme", "other"):
        assert runner.invoke(app, ["tenant", "create", tenant, "-w", ws]).exit_code == 0
    aliases = root / "aliases.csv"
    aliases.write_text("name,code,kind,valid_from,valid_to\nST大洲,000571,former,,\n",
                       encoding="utf-8")
    r = runner.invoke(app, ["risk", "aliases", "load", str(aliases), "-t", "acme", "-w", ws])
    assert r.exit_code == 0, r.output
    return ws


def test_a_former_name_links_only_with_the_tenants_aliases(workspace: str) -> None:
    stdin = _jsonl({"id": "rn-0503", "text": LAWSUIT})
    plain = runner.invoke(app, ["risk", "classify"], input=stdin)
    assert plain.exit_code == 0, plain.output
    row = json.loads(plain.stdout)
    assert row["companies"] == [] and row["event_type"] == "major_litigation"
    for tenant, expected in (("acme", [("ST大洲", "000571", True, "former_name")]),
                             ("other", [])):
        r = runner.invoke(app, ["risk", "classify", "-t", tenant, "-w", workspace], input=stdin)
        assert r.exit_code == 0, r.output
        row = json.loads(r.stdout)
        _check_shape(row, LAWSUIT)
        assert [(c["name"], c["code"], c["listed"], c["rule"])
                for c in row["companies"]] == expected, tenant
        assert row["event_type"] == "major_litigation"  # linking does not change the event
    nobody = runner.invoke(app, ["risk", "classify", "-t", "nobody", "-w", workspace], input="")
    assert nobody.exit_code == 2 and "nobody" in nobody.stderr
    no_tenant = runner.invoke(app, ["risk", "classify", "-w", workspace], input="")
    assert no_tenant.exit_code == 2 and "--workspace needs --tenant" in no_tenant.stderr


def test_evaluate_json_shape() -> None:
    r = runner.invoke(app, ["risk", "evaluate", "--json", "--split", "dev"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert set(report) == {"split", "items", "versions", "macro_f1", "macro_f1_supported", "accuracy", "classes",
                           "polarity", "false_alerts", "linking", "scripts", "confusion",
                           "worst"}
    assert report["split"] == "dev" and list(report["classes"]) == list(CLASSES)
    for name, c in report["classes"].items():
        assert set(c) == {"tp", "fp", "fn", "support", "precision", "recall", "f1"}, name
        assert c["support"] == c["tp"] + c["fn"]
    assert sum(c["support"] for c in report["classes"].values()) == report["items"] > 0
    assert sum(sum(row.values()) for row in report["confusion"].values()) == report["items"]
    correct = sum(c["tp"] for c in report["classes"].values())
    assert report["accuracy"] == round(correct / report["items"], 4)
    scored = [c["f1"] for c in report["classes"].values() if c["support"] or c["fp"]]
    assert report["macro_f1"] == pytest.approx(sum(scored) / len(scored), abs=1e-3)
    fa = report["false_alerts"]
    assert fa["none_items"] == report["classes"]["none"]["support"]
    assert 0 <= fa["pipeline"] <= fa["classifier"] <= fa["none_items"]
    link = report["linking"]
    assert set(link) == {"tp", "fp", "fn", "precision", "recall", "f1"}
    assert link["f1"] == round(2 * link["tp"] / (2 * link["tp"] + link["fp"] + link["fn"]), 4)
    assert sum(s["items"] for s in report["scripts"].values()) == report["items"]
    assert len(report["worst"]) <= 12
    assert all(w["expected"] != w["predicted"] for w in report["worst"])
    assert report["versions"]["model"] == EventModel.load().version
    assert report["versions"]["lexicon"] == load_lexicon().digest


def test_evaluate_check_fails_on_inflated_figures(tmp_path: Path) -> None:
    recorded = tmp_path / "quality.json"
    r = runner.invoke(app, ["risk", "evaluate", "--split", "dev", "--record", str(recorded)])
    assert r.exit_code == 0, r.output
    assert "issue 15 goals" in r.stdout and "worst misses" in r.stdout
    figures = json.loads(recorded.read_text(encoding="utf-8"))
    assert set(figures) >= {"split", "items", "model", "macro_f1", "linking_f1", "accuracy",
                            "false_alerts", "polarity_accuracy"}
    args = ["risk", "evaluate", "--split", "dev", "--check", str(recorded)]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert "quality gate: nothing dropped more than 0.03" in ok.stderr

    figures["macro_f1"] += 0.031
    figures["linking_f1"] += 0.029
    recorded.write_text(json.dumps(figures), encoding="utf-8")
    dropped = runner.invoke(app, args)
    assert dropped.exit_code == 1
    assert "dropped:" in dropped.stderr and "macro_f1:" in dropped.stderr
    assert "linking_f1" not in dropped.stderr
    looser = runner.invoke(app, [*args, "--tolerance", "0.05"])
    assert looser.exit_code == 0, looser.output

    missing = runner.invoke(app, ["risk", "evaluate", "--split", "dev", "--check",
                                  str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    bad_split = runner.invoke(app, ["risk", "evaluate", "--split", "holdout"])
    assert bad_split.exit_code == 2 and "expected train, dev or test" in bad_split.stderr
