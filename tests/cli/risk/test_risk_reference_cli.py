"""``caifu risk aliases|relations load|list``: a good file loads and lists; a file with a bad
row prints every bad row (where, field, reason) and exits 2 with nothing loaded."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from caifu.cli import app

runner = CliRunner(env={"COLUMNS": "250"})


def _workspace(tmp_path: Path) -> str:
    ws = str(tmp_path / "ws")
    assert runner.invoke(app, ["init", ws]).exit_code == 0
    assert runner.invoke(app, ["tenant", "create", "acme", "-w", ws]).exit_code == 0
    return ws


def test_load_and_list_aliases_and_relations(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    good = tmp_path / "aliases.csv"
    good.write_text("name,code,kind,valid_from,valid_to\n深发展A,000001,former,,2012-08-01\n"
                    "TCL集团,000100,former,,2020-02-06\n", encoding="utf-8")
    r = runner.invoke(app, ["risk", "aliases", "load", str(good), "-t", "acme", "-w", ws,
                            "--actor", "ops.li"])
    assert r.exit_code == 0, r.output
    assert "2 rows from aliases.csv — added 2, updated 0" in r.output
    r = runner.invoke(app, ["risk", "aliases", "list", "-t", "acme", "-w", ws])
    assert r.exit_code == 0 and "深发展A" in r.output and "2012-08-01" in r.output
    assert "aliases — acme (2)" in r.output

    bad = tmp_path / "relations.jsonl"
    bad.write_text('{"party": "深圳市地铁集团有限公司", "code": "000002", "relation": '
                   '"shareholder"}\n{"party": "某集团", "code": "000002", "relation": "friend"}\n',
                   encoding="utf-8")
    r = runner.invoke(app, ["risk", "relations", "load", str(bad), "-t", "acme", "-w", ws])
    assert r.exit_code == 2, r.output
    assert "nothing loaded" in r.output and "line 2" in r.output and "BAD_RELATION" in r.output
    r = runner.invoke(app, ["risk", "relations", "list", "-t", "acme", "-w", ws])
    assert "relations — acme (0)" in r.output
    bad.write_text('{"party": "深圳市地铁集团有限公司", "code": "000002", "relation": '
                   '"shareholder"}\n', encoding="utf-8")
    r = runner.invoke(app, ["risk", "relations", "load", str(bad), "-t", "acme", "-w", ws])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["risk", "relations", "list", "-t", "acme", "-w", ws])
    assert "深圳市地铁集团有限公司" in r.output and "relations — acme (1)" in r.output
