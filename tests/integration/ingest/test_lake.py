"""The lake: per-tenant Delta tables, one commit per batch, read by DuckDB with no extension."""

from __future__ import annotations

from pathlib import Path

from deltalake import DeltaTable

from caifu.adapters.lake.delta import BATCH_KEY
from caifu.services.container import Container
from caifu.services.ingest.load import Ingest
from tests.factories import seed_reference, trades_csv, write


def test_each_batch_is_one_tagged_commit_readable_through_ibis(
    sqlite_workspace: Container, tmp_path: Path
) -> None:
    c = sqlite_workspace
    ing = Ingest(c)
    ing.ingest("acme", seed_reference(tmp_path / "ref"))
    (a,) = ing.ingest("acme", [write(tmp_path / "trades_a.csv", trades_csv(range(1, 31)))])
    (b,) = ing.ingest("acme", [write(tmp_path / "trades_b.csv", trades_csv(range(31, 41)))])
    path = c.lake.path("acme", "trades")
    assert path == c.root / "lake" / "acme" / "trades"
    dt = DeltaTable(str(path))
    assert dt.version() == 1
    assert [h[BATCH_KEY] for h in dt.history()] == [b.batch_id, a.batch_id]
    assert c.lake.committed_batches("acme", "trades") == {a.batch_id, b.batch_id}

    with c.scratch("query") as scratch:
        _check_read(c, c.duckdb(scratch), a.batch_id, b.batch_id)


def _check_read(c: Container, con, a: str, b: str) -> None:  # type: ignore[no-untyped-def]
    t = c.lake_table(con, "acme", "trades")
    assert t is not None
    per_batch = con.execute(t.group_by("_batch_id").aggregate(n=t.count()).order_by("n"))
    assert per_batch.set_index("_batch_id")["n"].to_dict() == {b: 10, a: 30}
    assert float(con.execute(t.amount.sum())) == 40 * 1050.0
    # nothing was installed or loaded beyond DuckDB's built-ins (no network at run time)
    loaded = {r[0] for r in con.con.execute(
        "SELECT extension_name FROM duckdb_extensions() WHERE loaded OR installed").fetchall()}
    assert "delta" not in loaded and "sqlite_scanner" not in loaded and "postgres_scanner" not in loaded
    settings = con.con.execute(
        "SELECT current_setting('autoinstall_known_extensions'), "
        "current_setting('autoload_known_extensions')").fetchall()
    assert settings == [(False, False)]
    assert c.lake_table(con, "acme", "positions") is None
    con.disconnect()
