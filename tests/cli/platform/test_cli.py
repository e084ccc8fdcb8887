"""The terminal commands as a user runs them: exit codes and what they print."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from caifu.cli import app
from caifu.services.demo.broker import prepare_workspace
from caifu.settings import Settings
from tests.factories import seed_reference, trade_row, trades_csv, write

runner = CliRunner(env={"COLUMNS": "200"})  # wide enough that Rich tables keep whole words


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_init_tenant_ingest_log_and_quarantine(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    assert "ready" in _ok("init", ws)
    assert "created" in _ok("tenant", "create", "acme", "--name", "甲乙证券", "-w", ws)
    ref = seed_reference(tmp_path / "in")
    write(tmp_path / "in" / "trades.csv", trades_csv(range(1, 21), [trade_row(99, side="Z")]))
    out = _ok("ingest", "-t", "acme", "-w", ws, str(tmp_path / "in"))
    assert "trades.csv" in out and "side:ENUM" in out
    assert len(ref) == 5
    log = _ok("ingest-log", "-t", "acme", "-w", ws)
    assert "committed" in log and "trades" in log
    q = _ok("quarantine", "-t", "acme", "-w", ws)
    assert "side:ENUM" in q and "T0000099" in q
    assert "acme" in _ok("tenant", "list", "-w", ws)


def test_bad_input_exits_non_zero_with_file_line_and_column(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    _ok("init", ws)
    _ok("tenant", "create", "acme", "-w", ws)
    bad = write(tmp_path / "branches.csv", "branch_id,name,colour\nB1,x,red\n")
    result = runner.invoke(app, ["ingest", "-t", "acme", "-w", ws, str(bad)])
    assert result.exit_code == 3  # a refused file (SourceError), unlike the refusals below
    assert "branches.csv, line 1, column 'colour'" in result.output.replace("\n", "")
    missing = runner.invoke(app, ["ingest", "-t", "nobody", "-w", ws, str(bad)])
    assert missing.exit_code == 2 and "no tenant 'nobody'" in missing.output
    no_ws = runner.invoke(app, ["ingest", "-t", "acme", "-w", str(tmp_path / "none"), str(bad)])
    assert no_ws.exit_code == 2 and "no caifu workspace" in no_ws.output
    bad_tenant = runner.invoke(app, ["tenant", "create", "Bad Id", "-w", ws])
    assert bad_tenant.exit_code == 2 and "invalid tenant id" in bad_tenant.output


def test_demo_builds_its_own_workspace_and_refuses_anyone_elses(tmp_path: Path) -> None:
    real = tmp_path / "real"
    _ok("init", str(real))
    refused = runner.invoke(app, ["demo", "--customers", "200", "-w", str(real)])
    assert refused.exit_code == 2 and "not a demo workspace" in refused.output
    assert (real / "sor.db").exists() and (real / "caifu.yaml").exists()

    demo_ws = tmp_path / "demo"
    out = _ok("demo", "--customers", "300", "--seed", "3", "-w", str(demo_ws), "--port", "8123")
    assert "demo ready" in out and "khzl.csv" in out and "customers" in out
    assert "customers.id_number:ID_CHECKSUM" in out  # the injected bad rows, explained
    # the SCRM against the fake WeCom: callbacks through the checks, a funnel, the sidebar
    assert "WeCom SCRM" in out and "contact add_external_contact" in out
    assert "forged or replayed callbacks refused: 2 (BAD_SIGNATURE, STALE_TIMESTAMP)" in out
    assert "campaign funnel" in out and "/wecom/demo/sidebar?ctx=wm" in out
    # the risk replay: real headlines through intake → alerts and tasks (its own tests are
    # tests/integration/demo/test_demo_replay.py)
    assert "risk replay" in out and "alerts and tasks raised" in out
    # next best action: the rankers compared, every customer's list published for the sidebar
    assert "next best action" in out and "lambdarank" in out
    flat_out = out.replace("\n", "")
    assert "recommendation lists published as of" in flat_out and "300 customers" in flat_out
    # the sidebar hint names the port --serve will use, and a customer the page shows
    flat = out.replace("\n", "")
    assert "caifu demo --serve --port 8123" in flat
    assert "http://127.0.0.1:8123/wecom/demo/sidebar?ctx=wm" in flat and ":8000/" not in flat
    _sidebar_card_shows_something(demo_ws)
    _summary_is_the_metric_layers(demo_ws, out)
    log = _ok("ingest-log", "-t", "demo", "-w", str(demo_ws))
    assert log.count("committed") >= 19
    # the next run replaces its own workspace: what it starts from (the whole pipeline above
    # again would only repeat this test's minute and a half)
    fresh = prepare_workspace(demo_ws, Settings())
    fresh.close()
    assert "committed" not in _ok("ingest-log", "-t", "demo", "-w", str(demo_ws))
    assert not (demo_ws / "demo-data").exists() and (demo_ws / "sor.db").exists()


def test_demo_data_never_deletes_real_exports(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    write(exports / "khzl_20251031.csv", "客户号\n1\n", "gbk")
    result = runner.invoke(app, ["demo-data", "--customers", "100", "--out", str(exports)])
    assert result.exit_code == 2 and "no demo wrote" in result.output
    assert (exports / "khzl_20251031.csv").read_bytes() == "客户号\n1\n".encode("gbk")


def test_init_refuses_another_workspaces_database_unless_told(tmp_path: Path) -> None:
    first = tmp_path / "a"
    _ok("init", str(first))
    _ok("tenant", "create", "acme", "-w", str(first))
    url = f"sqlite:///{(first / 'sor.db').resolve()}"
    refused = runner.invoke(app, ["init", str(tmp_path / "b"), "--sor-url", url])
    assert refused.exit_code == 2
    assert "inside the workspace at" in refused.output and "--share-database" in refused.output
    assert "ready" in _ok("init", str(tmp_path / "b"), "--sor-url", url, "--share-database")
    assert "acme" in _ok("tenant", "list", "-w", str(tmp_path / "b"))


def _summary_is_the_metric_layers(root: Path, out: str) -> None:
    """The ingest totals and the tags held in the demo's output: counted here from the rows,
    cited by metric in the output."""
    import datetime as dt

    from sqlalchemy import func, select

    from caifu.adapters.sor.models import ingest_log, tag_assignments
    from caifu.services.container import build

    c = build(Settings(), root)
    try:
        today = (c.clock.now() + dt.timedelta(hours=8)).date()  # the demo tenant: UTC+8
        with c.engine.connect() as conn:
            sums = conn.execute(select(func.sum(ingest_log.c.rows_in), func.sum(ingest_log.c.loaded),
                                       func.sum(ingest_log.c.quarantined),
                                       func.sum(ingest_log.c.duplicates))
                                .where(ingest_log.c.tenant_id == "demo")).one()
            a = tag_assignments
            rows = conn.execute(select(a.c.customer_id, a.c.expires_at).where(
                a.c.tenant_id == "demo", a.c.tag_id == "dormant")).all()
    finally:
        c.close()
    total = next(x for x in out.splitlines() if "total" in x and "│" in x)
    assert [f"{n:,}" for n in sums] == re.findall(r"[\d,]+", total.split("│", 3)[3])[:4]
    held = sum(1 for _, expires in rows
               if expires is None or (expires + dt.timedelta(hours=8)).date() > today)
    line = next(x for x in out.splitlines() if "│ dormant " in x)
    assert held > 0 and f" {held:,} " in line
    flat = out.replace("\n", "")
    for metric in ("rows_read v1", "tag_holders v1", "segment_size v1",
                   "preference_group_customers v1"):
        assert metric in flat


def _sidebar_card_shows_something(root: Path) -> None:
    import json

    from sqlalchemy import select

    from caifu.adapters.sor.models import CONTRACT_TABLES, customer_cards
    from caifu.services.container import build
    from caifu.services.demo.scrm import sidebar_target
    from caifu.settings import Settings

    c = build(Settings(), root)
    try:
        target = sidebar_target(c, "demo")
        f = CONTRACT_TABLES["wecom_follows"]
        with c.engine.connect() as conn:
            customer = conn.execute(select(f.c.customer_id).where(
                (f.c.tenant_id == "demo") & (f.c.external_userid == target["external_userid"])
            )).scalar_one()
            card = json.loads(conn.execute(select(customer_cards.c.card_json).where(
                (customer_cards.c.tenant_id == "demo")
                & (customer_cards.c.customer_id == customer))).scalar_one())
    finally:
        c.close()
    assert any((card.get(kind) or {}).get("positions") for kind in ("stocks", "funds")), card
    assert card.get("recent_trades"), customer
