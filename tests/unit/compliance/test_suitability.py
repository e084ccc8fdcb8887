"""The suitability matrix of ../shared/reference/compliance.md, cell by cell."""

from __future__ import annotations

import datetime as dt

import pytest

from caifu.core.suitability import Investor, judge, lowest

ON = dt.date(2026, 11, 26)
VALID = dt.date(2027, 11, 26)
# rows C1..C5, columns R1..R5; "y" may be recommended, "w" never actively, "x" prohibited
MATRIX = {"C1*": "yxxxx", "C1": "ywwww", "C2": "yywww", "C3": "yyyww", "C4": "yyyyw",
          "C5": "yyyyy"}


@pytest.mark.parametrize("row", MATRIX)
def test_matrix(row: str) -> None:
    level = row.rstrip("*")
    investor = Investor(level, VALID, no_loss_tolerance=row.endswith("*"))
    got = "".join({"suitable": "y", "unsuitable": "w", "prohibited": "x"}[
        judge(investor, f"R{r}", ON).outcome] for r in range(1, 6))
    assert got == MATRIX[row]


def test_lowest_category_by_civil_capacity_too() -> None:
    v = judge(Investor("C1", VALID, no_civil_capacity=True), "R2", ON)
    assert (v.outcome, v.rule, v.may_recommend) == ("prohibited", "LOWEST_CATEGORY", False)


def test_expired_and_missing_assessments_block() -> None:
    v = judge(Investor("C5", dt.date(2026, 11, 25)), "R1", ON)
    assert (v.outcome, v.may_recommend) == ("expired", False)
    assert "2026-11-25" in v.reasons[0]
    assert judge(Investor("C5", ON), "R1", ON).may_recommend  # valid through its last day
    assert judge(Investor(None), "R1", ON).rule == "NO_ASSESSMENT"


def test_objective_caps_the_level() -> None:
    assert judge(Investor("C5", VALID, objective="income"), "R3", ON).rule == "OBJECTIVE_MISMATCH"
    assert judge(Investor("C5", VALID, objective="income"), "R2", ON).may_recommend


def test_group_is_judged_by_its_lowest_member() -> None:
    assert lowest(["C4", "C2", "C5"]) == "C2"
    assert lowest(["C4", None]) is None and lowest([]) is None


def test_horizon_longer_than_the_investors_is_not_recommended() -> None:
    inv = Investor("C5", VALID, horizon="medium")
    assert judge(inv, "R3", ON, horizon="medium").may_recommend
    v = judge(inv, "R3", ON, horizon="long")
    assert (v.outcome, v.rule) == ("horizon_mismatch", "HORIZON_MISMATCH")
    assert "long" in v.reasons[0] and "medium" in v.reasons[0]
    # a horizon the assessment did not record is read as the shortest
    assert judge(Investor("C5", VALID), "R3", ON, horizon="short").may_recommend
    assert judge(Investor("C5", VALID), "R3", ON, horizon="medium").rule == "HORIZON_MISMATCH"
    # research content has no horizon: judged on its level alone
    assert judge(Investor("C5", VALID), "R3", ON).may_recommend


def test_variety_not_chosen_is_not_recommended() -> None:
    inv = Investor("C4", VALID, varieties=frozenset({"cash", "fixed_income"}))
    assert judge(inv, "R2", ON, variety="fixed_income").may_recommend
    v = judge(inv, "R2", ON, variety="equity")
    assert (v.outcome, v.rule, v.may_recommend) == ("variety_mismatch", "VARIETY_MISMATCH",
                                                   False)
    assert judge(Investor("C4", VALID, varieties=frozenset()), "R1", ON,
                 variety="cash").rule == "VARIETY_MISMATCH"  # an empty answer admits none
    assert judge(Investor("C4", VALID), "R2", ON, variety="equity").may_recommend  # not asked
    with pytest.raises(ValueError, match="variety"):
        judge(inv, "R2", ON, variety="stocks")


def test_level_is_decided_before_horizon_and_variety() -> None:
    inv = Investor("C2", VALID, horizon="short", varieties=frozenset({"cash"}))
    assert judge(inv, "R4", ON, horizon="long", variety="equity").rule == "LEVEL_MISMATCH"
    assert judge(inv, "R2", ON, horizon="long", variety="equity").rule == "HORIZON_MISMATCH"
