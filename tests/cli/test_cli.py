"""The terminal commands as a user runs them: exit codes and what they print."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from caifu.cli import app
from tests.factories import seed_reference, trade_row, trades_csv, write

runner = CliRunner()


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
    assert result.exit_code == 2
    assert "branches.csv, line 1, column 'colour'" in result.output.replace("\n", "")
    missing = runner.invoke(app, ["ingest", "-t", "nobody", "-w", ws, str(bad)])
    assert missing.exit_code == 2 and "no tenant 'nobody'" in missing.output
    no_ws = runner.invoke(app, ["ingest", "-t", "acme", "-w", str(tmp_path / "none"), str(bad)])
    assert no_ws.exit_code == 2 and "no caifu workspace" in no_ws.output
    bad_tenant = runner.invoke(app, ["tenant", "create", "Bad Id", "-w", ws])
    assert bad_tenant.exit_code == 2 and "invalid tenant id" in bad_tenant.output
