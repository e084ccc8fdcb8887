"""``caifu metrics export --format osi`` and ``caifu metrics import [--check]``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

from caifu.cli.common import Commands
from caifu.cli.metrics_osi import register
from caifu.services.container import Container
from caifu.services.metrics.catalog import catalog, shipped

runner = CliRunner(env={"COLUMNS": "250"})

EXTRA = """
metrics:
  - name: app_turnover
    version: 1
    dataset: trades
    measure: SUM(amount)
    filter: "channel = 'app'"
    format: money
    owner: digital
    label: {zh: APP 成交金额, en: App turnover}
    description: {zh: 期内 APP 委托的成交金额, en: Turnover of orders placed in the app}
"""


def _app() -> typer.Typer:
    root = typer.Typer(cls=Commands)
    metrics_app = typer.Typer()
    register(metrics_app)
    root.add_typer(metrics_app, name="metrics")
    return root


def _metric(doc: dict, name: str) -> dict:
    return next(m for m in doc["semantic_model"][0]["metrics"] if m["name"] == name)


def test_export_then_import_into_a_tenant(sqlite_workspace: Container, tmp_path: Path) -> None:
    c, app = sqlite_workspace, _app()
    ws = str(c.root)
    folder = c.root / "metrics" / "acme"
    folder.mkdir(parents=True)
    (folder / "extra.yaml").write_text(EXTRA, encoding="utf-8")
    with_extra = catalog(c, "acme")
    out = tmp_path / "caifu.osi.yaml"

    r = runner.invoke(app, ["metrics", "export", "--format", "osi", "--out", str(out),
                            "-t", "acme", "-w", ws])
    assert r.exit_code == 0, r.output
    assert f"{len(with_extra.metrics)} metrics" in r.output
    doc = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert doc["version"] == "0.2.0.dev0"
    assert doc["semantic_model"][0]["name"] == "caifu_acme"
    assert _metric(doc, "app_turnover")["expression"]["dialects"][0]["expression"] == \
        "SUM(CASE WHEN trades.channel = 'app' THEN trades.amount END)"

    # everything identical: --check reports it and writes nothing
    r = runner.invoke(app, ["metrics", "import", str(out), "--check", "-t", "acme", "-w", ws])
    assert r.exit_code == 0, r.output
    assert "0 new, 0 different" in r.output

    # the tenant's own file gone: the import brings its metric back, with the same hash
    (folder / "extra.yaml").unlink()
    r = runner.invoke(app, ["metrics", "import", str(out), "--check", "-t", "acme", "-w", ws])
    assert r.exit_code == 0, r.output
    assert "1 new, 0 different" in r.output and "new      metric app_turnover" in r.output
    assert "--check: nothing written" in r.output
    assert sorted(p.name for p in folder.iterdir()) == []
    r = runner.invoke(app, ["metrics", "import", str(out), "-t", "acme", "-w", ws,
                            "--actor", "ops1"])
    assert r.exit_code == 0, r.output
    written = folder / "osi-caifu.osi.yaml"
    assert written.is_file() and f"written to {written}" in r.output.replace("\n", "")
    back = catalog(c, "acme")
    assert back.definition_hash("app_turnover") == with_extra.definition_hash("app_turnover")
    assert set(back.metrics) == set(shipped().metrics) | {"app_turnover"}
    with c.engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT actor, action, fields_json FROM audit_log "
                                   "ORDER BY seq DESC LIMIT 1").first()
    assert row is not None and (row[0], row[1]) == ("ops1", "configure")
    assert "metrics:metric:app_turnover" in row[2]


def test_a_shipped_metric_changed_in_the_file_is_refused(sqlite_workspace: Container,
                                                         tmp_path: Path) -> None:
    c, app = sqlite_workspace, _app()
    ws, out = str(c.root), tmp_path / "caifu.json"
    r = runner.invoke(app, ["metrics", "export", "--out", str(out), "-t", "acme", "-w", ws])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text(encoding="utf-8"))  # .json: JSON
    turnover = _metric(doc, "turnover")
    data = json.loads(turnover["custom_extensions"][0]["data"])
    data["definition"]["measure"] = "SUM(fee)"
    turnover["custom_extensions"][0]["data"] = json.dumps(data)
    turnover["expression"]["dialects"][0]["expression"] = "SUM(trades.fee)"
    out.write_text(json.dumps(doc), encoding="utf-8")
    r = runner.invoke(app, ["metrics", "import", str(out), "--check", "-t", "acme", "-w", ws])
    assert r.exit_code == 1, r.output
    assert "0 new, 2 different" in r.output
    assert "differs  metric turnover: definition hash" in r.output
    # the derived metric that reads it changes too
    assert "differs  metric commission_rate: definition hash" in r.output
    r = runner.invoke(app, ["metrics", "import", str(out), "-t", "acme", "-w", ws])
    assert r.exit_code == 2, r.output
    assert "caifu.json: 2 definition(s) differ from the tenant's under the same id (metric " \
           "turnover: definition hash" in " ".join(r.output.split())
    assert not (c.root / "metrics" / "acme").exists()


def test_bad_files_are_refused_with_the_place(sqlite_workspace: Container,
                                              tmp_path: Path) -> None:
    c, app = sqlite_workspace, _app()
    ws = str(c.root)
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: '0.2.0.dev0'\nsemantic_model:\n  - name: x\n    datasets: []\n",
                   encoding="utf-8")
    r = runner.invoke(app, ["metrics", "import", str(bad), "-t", "acme", "-w", ws])
    assert r.exit_code != 0
    assert "bad.yaml: not a valid OSI 0.2.0.dev0 document: semantic_model[0].datasets: at " \
           "least 1 item(s)" in " ".join(r.output.split())
    r = runner.invoke(app, ["metrics", "export", "--format", "dbt", "--out",
                            str(tmp_path / "x.yaml"), "-t", "acme", "-w", ws])
    assert r.exit_code != 0 and "--format 'dbt': one of osi" in r.output
