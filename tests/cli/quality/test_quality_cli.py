"""``caifu quality status|history|check`` on a small workspace: the numbers the services
give, as a table and as JSON; a bad option is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from caifu.cli import app
from tests.factories import TRADE_HEADER, seed_reference, trade_row, write

runner = CliRunner(env={"COLUMNS": "250"})


def test_status_history_and_check(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    assert runner.invoke(app, ["init", ws]).exit_code == 0
    assert runner.invoke(app, ["tenant", "create", "acme", "-w", ws]).exit_code == 0
    seed_reference(tmp_path / "in")
    rows = [trade_row(i) + ("," if i % 4 == 0 else ",app") for i in range(1, 41)]
    rows.append(trade_row(99, security_code="999999") + ",app")
    write(tmp_path / "in" / "trades.csv", TRADE_HEADER + ",channel\n" + "\n".join(rows) + "\n")
    r = runner.invoke(app, ["ingest", "-t", "acme", "-w", ws, str(tmp_path / "in")])
    assert r.exit_code == 0, r.output

    h = runner.invoke(app, ["quality", "history", "-t", "acme", "-w", ws, "--table", "trades",
                            "--json"])
    assert h.exit_code == 0, h.output
    [batch] = json.loads(h.output)
    assert (batch["rows_in"], batch["loaded"], batch["quarantined"]) == (41, 40, 1)
    assert batch["null_counts"]["channel"] == 10 and batch["null_rates"]["channel"] == 0.25
    assert batch["oldest_date"] == batch["newest_date"] == "2025-03-03"

    table = runner.invoke(app, ["quality", "history", "-t", "acme", "-w", ws])
    assert table.exit_code == 0 and "channel 25%" in table.output and "2.4%" in table.output

    s = runner.invoke(app, ["quality", "status", "-t", "acme", "-w", ws])
    assert s.exit_code == 0, s.output
    line = next(x for x in s.output.splitlines() if x.startswith("│ trades"))
    assert "2.4%" in line and "2025-03-03" in line and "trade_date" in line
    assert "open alerts" in s.output and "freshness" in s.output  # 2025 trades are stale now

    js = json.loads(runner.invoke(app, ["quality", "status", "-t", "acme", "-w", ws,
                                        "--json"]).output)
    trades = next(t for t in js["tables"] if t["table"] == "trades")
    assert trades["last_rows_in"] == 41 and trades["open_alerts"] == 1 and trades["stale"]

    c = runner.invoke(app, ["quality", "check", "-t", "acme", "-w", ws, "--json"])
    assert c.exit_code == 0, c.output
    outcomes = {(x["table"], x["rule"], x["subject"]): x["outcome"]
                for x in json.loads(c.output)["checks"]}
    assert outcomes[("trades", "freshness", "")] == "still open"
    assert outcomes[("trades", "quarantine_rate", "")] == "ok"

    bad = runner.invoke(app, ["quality", "history", "-t", "acme", "-w", ws, "--since", "3 May"])
    assert bad.exit_code == 2 and "--since '3 May': not a date YYYY-MM-DD" in bad.output
    bad = runner.invoke(app, ["quality", "history", "-t", "acme", "-w", ws, "--table", "x"])
    assert bad.exit_code == 2 and "no such table 'x'" in bad.output
