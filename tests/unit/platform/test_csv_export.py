"""Every CSV export neutralises formula-like text cells and leaves numbers alone."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa

from caifu.adapters.csv_export import safe_cell
from caifu.cli.value.redemption import export_tasks
from caifu.services.profiles.segments import export

EVIL = ["=HYPERLINK(\"http://x\",\"点我\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
        "\t=1+1", "\r=1+1", "张三", "-12.5", None]
SAFE = ["'=HYPERLINK(\"http://x\",\"点我\")", "'+1+cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1)",
        "'\t=1+1", "'\r=1+1", "张三", "-12.5", ""]


def _read(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as f:
        return list(csv.DictReader(f))


def test_cells_are_neutralised_and_numbers_stay() -> None:
    assert [safe_cell(v) for v in EVIL] == [*SAFE[:-1], None]
    assert safe_cell(-12.5) == -12.5 and safe_cell(-3) == -3


def test_segment_members_csv_is_safe(tmp_path: Path) -> None:
    members = pa.table({"customer_id": [f"C{i}" for i in range(len(EVIL))], "name": EVIL,
                        "balance": pa.array([-12.5] * len(EVIL), pa.float64()),
                        "tag": pa.array(EVIL).dictionary_encode()})
    rows = _read(export(members, tmp_path / "m.csv"))
    assert [r["name"] for r in rows] == SAFE
    assert [r["tag"] for r in rows] == SAFE
    assert {r["balance"] for r in rows} == {"-12.5"}  # a number, not "'-12.5"


def test_redemption_task_export_is_safe(tmp_path: Path) -> None:
    rows = [{"task_id": f"T{i}", "customer_id": v, "advisor_id": "A1", "rank": i,
             "score": -0.5, "reason_codes": "=1+1", "reasons": v, "extra": "=x"}
            for i, v in enumerate(EVIL)]
    assert export_tasks(rows, tmp_path / "tasks.csv") == len(EVIL)
    got = _read(tmp_path / "tasks.csv", "utf-8-sig")
    assert [r["reasons"] for r in got] == SAFE and [r["customer_id"] for r in got] == SAFE
    assert {r["score"] for r in got} == {"-0.5"} and {r["reason_codes"] for r in got} == {"'=1+1"}
    assert "extra" not in got[0]
