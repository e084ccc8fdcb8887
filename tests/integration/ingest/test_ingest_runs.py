"""A run of several files says per file what happened; writers lock per (tenant, table) only,
and one that must wait says for which batch."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from caifu.cli import app
from caifu.core.errors import CaifuError
from caifu.services.container import Container
from caifu.services.ingest.load import BatchResult, Ingest, writer_lock
from caifu.services.platform.workspace import create_tenant, init_workspace
from caifu.settings import Settings
from tests.factories import ADVISORS, BRANCHES, seed_reference, trades_csv, write

T = "acme"


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Container]:
    c = init_workspace(tmp_path / "ws", Settings(duckdb_memory_limit="1GB"))
    create_tenant(c, T, "甲乙证券")
    yield c
    c.close()


def _three_files(folder: Path) -> list[Path]:
    """branches (fine), advisors (an unknown column: fails), customers (after both)."""
    return [write(folder / "branches.csv", BRANCHES),
            write(folder / "advisors.csv", ADVISORS.replace("\n", ",x\n", 1)),
            write(folder / "customers.csv", "customer_id\nC1\n")]


def test_a_failed_file_says_what_landed_and_what_was_skipped(ws: Container,
                                                             tmp_path: Path) -> None:
    files = _three_files(tmp_path / "in")
    outcomes: list[BatchResult] = []
    with pytest.raises(CaifuError, match="advisors.csv"):
        Ingest(ws).ingest(T, files, outcomes=outcomes)
    got = [(o.path.name, o.status) for o in outcomes]
    assert got == [("branches.csv", "loaded"), ("advisors.csv", "failed"),
                   ("customers.csv", "skipped")]
    assert outcomes[0].loaded == BRANCHES.count("\n") - 1
    assert "advisors.csv" in outcomes[1].error and outcomes[2].error.startswith("not attempted")

    res = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["ingest", "-t", T, "-w", str(ws.root), *map(str, files)])
    assert res.exit_code == 3  # a file refused whole (core/errors: SourceError)
    out = res.output
    assert "branches.csv" in out and "loaded" in out  # duplicates now, but it landed
    assert "advisors.csv" in out and "failed" in out
    assert "customers.csv" in out and "skipped: not attempted" in out


def _in_thread(target: object) -> tuple[threading.Thread, list[object]]:
    box: list[object] = []

    def run() -> None:
        try:
            box.append(target())  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box.append(exc)

    t = threading.Thread(target=run)
    t.start()
    return t, box


def test_other_tables_do_not_wait_and_the_same_table_says_what_it_waits_for(
        ws: Container, tmp_path: Path) -> None:
    seed_reference(tmp_path / "ref")
    Ingest(ws).ingest(T, [tmp_path / "ref"])
    branches = write(tmp_path / "b" / "branches.csv", BRANCHES)
    trades = write(tmp_path / "t" / "trades.csv", trades_csv(range(1, 11)))
    phases: list[tuple[str, str]] = []

    with writer_lock(ws, T, "trades", "a1b2c3d4e5f6a7b8"):  # a large trades ingest runs
        other, box = _in_thread(lambda: Ingest(ws).ingest(T, [branches]))
        other.join(timeout=120)
        assert not other.is_alive(), "a branches ingest waited for the trades lock"
        assert isinstance(box[0], list) and box[0][0].table == "branches"

        same, same_box = _in_thread(lambda: Ingest(ws).ingest(
            T, [trades], progress=lambda f, p: phases.append((f, p))))
        for _ in range(600):
            if any(p.startswith("waiting") for _, p in phases):
                break
            same.join(timeout=0.1)
        assert same.is_alive(), "the trades ingest did not wait for the trades lock"
    same.join(timeout=120)
    waits = [p for _, p in phases if p.startswith("waiting")]
    assert len(waits) == 1
    assert waits[0].startswith("waiting for the trades ingest of batch a1b2c3d4e5f6 started ")
    assert isinstance(same_box[0], list) and same_box[0][0].inserted == 10
