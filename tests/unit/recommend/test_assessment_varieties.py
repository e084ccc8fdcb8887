"""The recommender reads the 投资品种 answer from the assessment rows as the system of record
returns them (``services/recommend/inputs.customers_as_of``): an investor who answered only
cash and fixed income is refused an equity fund by VARIETY_MISMATCH, one whose questionnaire
did not ask (NULL) is not — and the sidebar's re-check (``serving.investor`` → ``judge``) says
the same of the same row."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from caifu.core.suitability import judge
from caifu.data.contracts import registry
from caifu.data.contracts.arrow import contract_schema
from caifu.recommend import config
from caifu.recommend import eligibility as el
from caifu.recommend.catalogue import EPOCH, build
from caifu.services.recommend import inputs as rin
from caifu.services.recommend import serving

DAY = dt.date(2026, 12, 4)
FUNDS = {"F000001": ("equity", "R3"), "F000002": ("bond", "R2"), "F000003": ("money", "R1")}
# customer -> the stored varieties answer (None: not asked); all C4, objective growth, long
ANSWERS = {"c1": "cash,fixed_income", "c2": None, "c3": "equity", "c4": ""}


def _assessment(cid: str, varieties: str | None) -> dict[str, Any]:
    return {"assessment_id": f"A-{cid}", "customer_id": cid, "questionnaire_version": "2025v1",
            "assessed_on": dt.date(2026, 1, 5), "score": 70, "risk_level": "C4",
            "no_loss_tolerance": False, "no_civil_capacity": False, "objective": "growth",
            "horizon": "long", "valid_until": dt.date(2029, 1, 4), "varieties": varieties}


@pytest.fixture(scope="module")
def data() -> rin.TenantData:
    content = pa.table({
        "content_id": pa.array([], pa.string()), "content_type": pa.array([], pa.string()),
        "title": pa.array([], pa.string()), "risk_level": pa.array([], pa.string()),
        "published_at": pa.array([], pa.timestamp("us")),
        "security_code": pa.array([], pa.string()), "fund_code": pa.array([], pa.string())})
    funds = pa.table({
        "fund_code": [c[1:] for c in FUNDS], "name": ["成长混合", "纯债A", "现金宝"],
        "fund_type": [t for t, _ in FUNDS.values()], "risk_level": [r for _, r in FUNDS.values()],
        "launched_on": pa.array([dt.date(2020, 1, 1)] * len(FUNDS))})
    cat = build(content, funds, config.default())
    # the rows as ingest_repo.rows returns them: the contract's columns and types
    assessments = pa.Table.from_pylist(
        [_assessment(cid, v) for cid, v in ANSWERS.items()],
        schema=contract_schema(registry()["suitability_assessments"]))
    customers = pa.table({"customer_id": list(ANSWERS), "marketing_consent": [True] * 4,
                          "professional": [False] * 4})
    return rin.TenantData(cat, config.default(), customers, pa.table({}), assessments,
                          None, None, np.zeros(len(cat), np.int64))  # type: ignore[arg-type]


def test_the_mask_refuses_equity_to_an_investor_who_chose_only_cash_and_fixed_income(
        data: rin.TenantData) -> None:
    cust = rin.customers_as_of(data, list(ANSWERS), DAY)
    codes = el.suitability_refusals(cust, data.cat, (DAY - EPOCH).days)
    by_item = {i: [el.RULES[codes[r, data.cat.index[i]]] for r in range(len(ANSWERS))]
               for i in FUNDS}
    assert by_item == {
        # c1 cash + fixed income, c2 not asked, c3 equity only, c4 answered none of them
        "F000001": ["VARIETY_MISMATCH", "OK", "OK", "VARIETY_MISMATCH"],
        "F000002": ["OK", "OK", "VARIETY_MISMATCH", "VARIETY_MISMATCH"],
        "F000003": ["OK", "OK", "VARIETY_MISMATCH", "VARIETY_MISMATCH"],
    }
    assert cust.varieties_known.tolist() == [True, False, True, True]


def test_the_sidebar_re_check_reads_the_same_row_the_same_way(data: rin.TenantData) -> None:
    cust = rin.customers_as_of(data, list(ANSWERS), DAY)
    for r, row in enumerate(data.assessments.to_pylist()):
        inv = serving.investor(SimpleNamespace(**row), professional=False)
        assert inv == cust.investor(r), row["customer_id"]
        for item, (_, risk) in FUNDS.items():
            i = data.cat.index[item]
            verdict = judge(inv, risk, DAY, horizon=data.cat.horizon_name(i),
                            variety=data.cat.variety_name(i))
            assert verdict.rule == el.RULES[el.suitability_refusals(
                cust, data.cat, (DAY - EPOCH).days)[r, i]], (row["customer_id"], item)
