"""``caifu quarantine`` masks level-3 values of the raw rows like the API; ``--unmask`` needs a
reason and writes an audit record before anything is shown in clear."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from caifu.cli import app
from caifu.services.compliance import audit
from caifu.services.container import build
from caifu.settings import Settings
from tests.factories import ADVISORS, BRANCHES, customer_row, customers_csv, write

runner = CliRunner(env={"COLUMNS": "250"})
BAD_ID = "110105194912310021"  # wrong GB 11643 check digit


def test_quarantine_masks_by_default_and_unmask_is_audited(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    assert runner.invoke(app, ["init", ws]).exit_code == 0
    assert runner.invoke(app, ["tenant", "create", "acme", "-w", ws]).exit_code == 0
    write(tmp_path / "in" / "branches.csv", BRANCHES)
    write(tmp_path / "in" / "advisors.csv", ADVISORS)
    bad = customer_row(9, id_number=BAD_ID, mobile="13912345678")
    write(tmp_path / "in" / "customers.csv", customers_csv(3, [bad]))
    r = runner.invoke(app, ["ingest", "-t", "acme", "-w", ws, str(tmp_path / "in")])
    assert r.exit_code == 0, r.output

    masked = runner.invoke(app, ["quarantine", "-t", "acme", "-w", ws])
    assert masked.exit_code == 0, masked.output
    assert "id_number:ID_CHECKSUM" in masked.output and "C00009" in masked.output
    assert BAD_ID not in masked.output and "13912345678" not in masked.output
    assert masked.output.count("id_number:ID_CHECKSUM") == 1
    assert "刘洋" not in masked.output and "139****5678" in masked.output

    no_reason = runner.invoke(app, ["quarantine", "-t", "acme", "-w", ws, "--unmask"])
    assert no_reason.exit_code == 2 and "reason" in no_reason.output
    c = build(Settings(), Path(ws))
    assert [s.entry.action for s in audit.records(c, "acme")] == []

    clear = runner.invoke(app, ["quarantine", "-t", "acme", "-w", ws, "--unmask",
                                "--reason", "修正身份证号后重新导入", "--actor", "ops.wang"])
    assert clear.exit_code == 0, clear.output
    assert BAD_ID in clear.output and "刘洋" in clear.output
    [rec] = audit.records(c, "acme")
    assert (rec.entry.action, rec.entry.actor, rec.entry.customer_ids) == (
        "unmask", "ops.wang", ("C00009",))
    assert rec.entry.reason == "修正身份证号后重新导入" and "id_number" in rec.entry.fields
    c.close()
