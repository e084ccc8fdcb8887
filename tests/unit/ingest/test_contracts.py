"""The contracts are consistent, the docs and migrations are generated from them and in step."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from caifu.adapters.sor.docs import data_model
from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.schema import metadata
from caifu.adapters.sor.store import current_revision, head_revision, migrate, open_engine
from caifu.core.errors import ConfigError, ContractError
from caifu.core.ids import VALIDATORS
from caifu.core.levels import MaskKind
from caifu.data.contracts import Column, Registry, Table, registry
from caifu.data.contracts.docs import render

ROOT = Path(__file__).resolve().parents[3]
REQUIRED_TABLES = {
    "tenants", "branches", "advisors", "customers", "accounts", "securities", "fund_products",
    "suitability_assessments", "fund_top_holdings", "trades", "positions", "cash_flows",
    "fund_transactions",
    "app_events", "wecom_follows", "chat_messages", "content_items", "campaigns",
    "campaign_touches",
}


def test_all_tables_of_the_issue_exist_in_dependency_order() -> None:
    r = registry()
    names = [t.name for t in r]
    assert set(names) == REQUIRED_TABLES
    for t in r:
        for _, ref_table, _ in t.refs:
            assert names.index(ref_table) < names.index(t.name), (t.name, ref_table)


def test_every_column_is_classified_and_checks_exist() -> None:
    for t in registry():
        for c in t.columns:
            assert 1 <= c.level <= 4, (t.name, c.name)
            assert c.desc, (t.name, c.name)
            if c.check:
                assert c.check in VALIDATORS
            if c.level >= 3 and c.pii and c.mask:
                assert c.mask in {m.value for m in MaskKind}
            if c.kind == "decimal" and c.name in ("amount", "fee", "cost", "market_value", "spend"):
                assert (c.precision, c.scale) == (18, 2), "money is DECIMAL(18,2)"


def test_personal_identity_columns_are_level_3_pii() -> None:
    r = registry()
    for table, col in [("customers", "name"), ("customers", "id_number"),
                       ("customers", "mobile"), ("accounts", "fund_account")]:
        c = r[table][col]
        assert c.level == 3 and c.pii and c.mask, (table, col)


def test_contract_mistakes_are_caught() -> None:
    with pytest.raises(ContractError, match="must be required"):
        Table("x", "x", "sor", ("id",), (Column("id", "string", "编号"),))
    with pytest.raises(ContractError, match="does not exist"):
        Registry([Table("x", "x", "sor", ("id",), (
            Column("id", "string", "编号", required=True, ref="nope.id"),))])
    with pytest.raises(ConfigError, match="unknown table 'nope'"):
        registry()["nope"]


def test_data_model_doc_is_generated_from_the_contracts() -> None:
    doc = (ROOT / "docs" / "data-model.md").read_text(encoding="utf-8")
    assert doc == data_model(), "run `caifu docs` to regenerate docs/data-model.md"
    assert doc.startswith(render(registry()))  # the contracts first, caifu's own tables after
    for table in ("recommendation_lists", "recommendation_log"):
        assert f"\n## {table}\n" in doc


def test_sor_tables_carry_the_tenant_first_in_the_key() -> None:
    for name, table in CONTRACT_TABLES.items():
        if name == "tenants":
            continue
        assert list(table.primary_key.columns)[0].name == "tenant_id", name


@pytest.mark.dialect
def test_migrations_build_exactly_the_models(sor_url: str) -> None:
    engine = open_engine(sor_url)
    migrate(engine)
    migrate(engine)  # idempotent
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata)
    engine.dispose()
    assert diff == [], "the models changed without a migration: add one with alembic revision"


def test_profile_features_doc_is_current() -> None:
    from caifu.pipelines.profile_docs import render as render_features

    doc = (ROOT / "docs" / "profile-features.md").read_text(encoding="utf-8")
    assert doc == render_features(), "run `caifu docs` to regenerate docs/profile-features.md"
