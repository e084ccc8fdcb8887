"""The data dictionary: every contract column has an English description, the Markdown is
generated (``caifu docs``), and each column carries its contract's level, PII flag and the
metrics, features and tags that read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from caifu.data.contracts import registry
from caifu.services.metrics import dictionary
from caifu.services.metrics.catalog import shipped
from caifu.services.metrics.lineage import shipped_lineage

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def d():  # type: ignore[no-untyped-def]
    return dictionary.dictionary(shipped_lineage())


def test_every_contract_and_declared_operational_column_has_english() -> None:
    en = dictionary.english()
    missing = [f"{t.name}.{c.name}" for t in registry() for c in t.columns
               if not str((en.get(t.name) or {}).get("columns", {}).get(c.name) or "").strip()]
    missing += [f"{ds.source}.{c}" for ds in shipped().datasets.values()
                if ds.own_columns for c in ds.columns
                if not str((en.get(ds.source) or {}).get("columns", {}).get(c) or "").strip()]
    assert missing == [], "add them to src/caifu/data/contracts/english.yaml"
    assert all(str((en.get(t.name) or {}).get("desc") or "").strip() for t in registry())


def test_english_names_no_column_that_does_not_exist() -> None:
    known = {t.name: set(t.column_names) for t in registry()}
    known |= {ds.source: set(ds.columns) for ds in shipped().datasets.values()
              if ds.own_columns}
    stale = [f"{t}.{c}" for t, entry in dictionary.english().items()
             for c in (entry.get("columns") or {}) if c not in known.get(t, set())]
    assert stale == []


def test_the_markdown_is_generated_from_the_code() -> None:
    doc = (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert doc == dictionary.render_shipped(), \
        "run `caifu docs` to regenerate docs/data-dictionary.md"


def test_columns_carry_the_contracts_level_pii_and_descriptions(d) -> None:  # type: ignore[no-untyped-def]
    tables = {t["name"]: t for t in d["tables"]}
    names = [t.name for t in registry()]
    assert names == [t["name"] for t in d["tables"]][:len(names)]
    assert {"sor:chat_compliance_flags", "sor:ingest_log"} <= set(tables)
    for t in registry():
        cols = {c["name"]: c for c in tables[t.name]["columns"]}
        assert list(cols) == list(t.column_names)
        for c in t.columns:
            assert (cols[c.name]["level"], cols[c.name]["pii"]) == (c.level, c.pii)
            assert cols[c.name]["description"]["zh"] == c.desc
    mobile = next(c for c in tables["customers"]["columns"] if c["name"] == "mobile")
    assert mobile["level"] == 3 and mobile["pii"] and mobile["description"]["en"] == \
        "Mobile number"


def test_owners_come_from_the_metric_files_else_the_data_office(d) -> None:  # type: ignore[no-untyped-def]
    owners = {t["name"]: t["owner"] for t in d["tables"]}
    assert owners["trades"] == "brokerage" and owners["cash_flows"] == "finance"
    assert owners["tenants"] == owners["fund_top_holdings"] == "data-office"
    assert owners["sor:chat_compliance_flags"] == "compliance"


def test_uses_come_from_the_lineage(d) -> None:  # type: ignore[no-untyped-def]
    trades = {c["name"]: c for t in d["tables"] if t["name"] == "trades"
              for c in t["columns"]}
    assert "commission_revenue" in trades["fee"]["metrics"]
    assert "fees_365d" in trades["fee"]["features"]
    assert trades["price"]["metrics"] == trades["price"]["features"] == []
    positions = {c["name"]: c for t in d["tables"] if t["name"] == "positions"
                 for c in t["columns"]}
    assert "high_net_worth" in positions["market_value"]["tags"]
    assert "aum" in positions["market_value"]["metrics"]
