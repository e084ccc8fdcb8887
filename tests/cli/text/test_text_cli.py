"""``caifu text train | tag | evaluate`` on a small real corpus (verbatim corpus lines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from caifu.cli import app
from tests.unit.text.conftest import FIXTURE

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    r = runner.invoke(app, ["text", "train", "--corpus", str(FIXTURE), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "written to" in r.stdout and (out / "model.npz").is_file()
    return out


def test_train_twice_gives_the_same_bytes(tmp_path: Path, model_dir: Path) -> None:
    r = runner.invoke(app, ["text", "train", "--corpus", str(FIXTURE), "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    for name in ("model.npz", "manifest.json"):
        assert (tmp_path / name).read_bytes() == (model_dir / name).read_bytes()


def test_tag_reports_and_counts_bad_lines(tmp_path: Path, model_dir: Path) -> None:
    lines = [
        json.dumps({"id": "m1", "text": "基金贖回是什麼?可以隨時贖回嗎?"}, ensure_ascii=False),
        "not json at all",
        json.dumps({"id": "m3"}),
        "",
        json.dumps({"id": "m5", "text": 42}),
        json.dumps({"id": 6, "text": "开通创业板需要什么条件20日日均怎么算"}, ensure_ascii=False),
        json.dumps(["id", "text"]),
        json.dumps({"id": None, "text": "x"}),
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = runner.invoke(app, ["text", "tag", "--side", "customer", "--model", str(model_dir),
                            str(src)])
    assert r.exit_code == 1
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert [o["id"] for o in out] == ["m1", 6]
    assert set(out[0]) == {"id", "interests", "intents", "emotions", "violations", "evidence"}
    assert "redeem" in out[0]["intents"] and "chinext" in out[1]["interests"]
    assert "open_permission" in out[1]["intents"]
    for problem in ("line 2: not JSON", "line 3: missing text", "line 5: text must be a string",
                    "line 7: expected a JSON object", "line 8: id must be a string or an integer",
                    "2 message(s) tagged, 5 bad line(s) skipped"):
        assert problem in r.stderr, problem


def test_tag_reads_stdin_for_the_advisor(model_dir: Path) -> None:
    stdin = "\n".join(json.dumps({"id": f"a{n}", "text": t}, ensure_ascii=False) for n, t in
                      enumerate(["保本高息、稳赚不赔", "不承诺保本保息,风险由投资者自行承担"]))
    r = runner.invoke(app, ["text", "tag", "--side", "advisor", "--model", str(model_dir)],
                      input=stdin)
    assert r.exit_code == 0, r.output
    first, second = (json.loads(x) for x in r.stdout.splitlines())
    assert {"guaranteed_return", "certainty"} <= set(first["violations"])
    assert second["violations"] == []
    bad = runner.invoke(app, ["text", "tag", "--side", "broker", "--model", str(model_dir)],
                        input="")
    assert bad.exit_code == 2 and "--side: expected customer or advisor" in bad.stderr


def test_evaluate_check_gate(tmp_path: Path, model_dir: Path) -> None:
    args = ["text", "evaluate", "--split", "dev", "--corpus", str(FIXTURE),
            "--model", str(model_dir)]
    recorded = tmp_path / "quality.json"
    r = runner.invoke(app, [*args, "--json", "--record", str(recorded)])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["split"] == "dev" and report["items"] == 14
    assert set(report["families"]) == {"interests", "intents", "emotions", "violations"}
    assert set(report["violation_vs_none"]) >= {"precision", "recall", "items"}
    figures = json.loads(recorded.read_text(encoding="utf-8"))
    assert figures["families"]["intents"]["f1"] == report["families"]["intents"]["f1"]

    ok = runner.invoke(app, [*args, "--check", str(recorded)])
    assert ok.exit_code == 0, ok.output
    assert "families (micro)" in ok.stdout and "worst misses" in ok.stdout

    figures["families"]["intents"]["f1"] = report["families"]["intents"]["f1"] + 0.031
    figures["families"]["emotions"]["f1"] = report["families"]["emotions"]["f1"] + 0.029
    recorded.write_text(json.dumps(figures), encoding="utf-8")
    dropped = runner.invoke(app, [*args, "--check", str(recorded)])
    assert dropped.exit_code == 1
    assert "intents: micro-F1" in dropped.stderr and "emotions" not in dropped.stderr

    missing = runner.invoke(app, [*args, "--check", str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_tenant_model_with_its_examples(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    assert runner.invoke(app, ["init", ws]).exit_code == 0
    assert runner.invoke(app, ["tenant", "create", "acme", "-w", ws]).exit_code == 0
    folder = Path(ws) / "text" / "acme"
    folder.mkdir(parents=True)
    (folder / "taxonomy.yaml").write_text(
        "extends: default\nversion: acme-1\nadd:\n  interests:\n    reits: 公募REITs\n",
        encoding="utf-8")
    line = json.loads((FIXTURE / "customer_voices.jsonl").read_text(
        encoding="utf-8").splitlines()[0])
    (folder / "examples.jsonl").write_text(json.dumps(
        {**line, "id": "acme-0001", "text": line["text"] + "…"}, ensure_ascii=False) + "\n",
        encoding="utf-8")
    r = runner.invoke(app, ["text", "train", "-t", "acme", "-w", ws, "--corpus", str(FIXTURE)])
    assert r.exit_code == 0, r.output
    manifest = json.loads((folder / "model" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["taxonomy_version"] == "2026.12+acme-1"
    assert "reits" in manifest["sides"]["customer"]["untrained"]
    tagged = runner.invoke(app, ["text", "tag", "--side", "customer", "-t", "acme", "-w", ws],
                           input=json.dumps({"id": 1, "text": "创业板开通要求有哪些?"},
                                            ensure_ascii=False))
    assert tagged.exit_code == 0, tagged.output
    assert "chinext" in json.loads(tagged.stdout)["interests"]
    nobody = runner.invoke(app, ["text", "tag", "--side", "customer", "-t", "nobody", "-w", ws],
                           input="")
    assert nobody.exit_code == 2 and "no tenant 'nobody'" in nobody.stderr
