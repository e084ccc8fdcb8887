"""The suitability mask against ``core.suitability.judge``, exhaustively.

Issue 16's first goal: 0 suitability violations over every C × R × objective × horizon ×
variety combination. The mask (numpy, ``recommend.eligibility``) and ``judge`` (scalar, what
the sidebar and campaigns call) are separate implementations of the rules in
../shared/reference/compliance.md; here they must agree on every pair — the same outcome and
the same deciding rule — so a ranker that only ever sees the mask cannot offer anything
``judge`` would refuse.
"""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pytest

from caifu.core.suitability import HORIZONS, OBJECTIVES, VARIETIES, Investor, judge
from caifu.recommend import eligibility as el
from caifu.recommend.catalogue import NEVER, Catalogue

ON = dt.date(2026, 12, 7)
LEVELS = (None, "C1*", "C1", "C2", "C3", "C4", "C5")  # C1* = lowest category
VARIETY_SETS = (None, *(frozenset(c) for n in range(len(VARIETIES) + 1)
                        for c in itertools.combinations(VARIETIES, n)))


def catalogue(products: list[tuple[int, int, int]]) -> Catalogue:
    """Items from (R-level, horizon 0..3, variety -1..4)."""
    n = len(products)
    r, h, v = (np.array(x, np.int8) for x in zip(*products, strict=True))
    return Catalogue(
        item_id=np.array([f"I{i}" for i in range(n)], dtype=object),
        item_type=np.ones(n, np.int8), kind=np.full(n, "equity", dtype=object),
        title=np.full(n, "t", dtype=object), risk=r, horizon=h, variety=v,
        valid_from=np.zeros(n, np.int32), valid_until=np.full(n, NEVER, np.int32),
        security_code=np.full(n, "", dtype=object), fund_code=np.full(n, "", dtype=object),
        compliance_ok=np.ones(n, bool))


def investor(level: str | None, objective: str | None, horizon: str | None,
             varieties: frozenset[str] | None, until: dt.date | None,
             professional: bool = False) -> Investor:
    return Investor(level.rstrip("*") if level else None, until,
                    no_loss_tolerance=bool(level and level.endswith("*")), objective=objective,
                    professional=professional, horizon=horizon, varieties=varieties)


def agree(investors: list[Investor], cat: Catalogue) -> int:
    """Compare mask and judge on every pair; returns the number of pairs compared."""
    cust = el.customers_from_investors([str(i) for i in range(len(investors))], investors,
                                       [True] * len(investors))
    codes = el.suitability_refusals(cust, cat, (ON - dt.date(1970, 1, 1)).days)
    products = [(cat.level(i), cat.horizon_name(i), cat.variety_name(i)) for i in range(len(cat))]
    wrong = []
    for row, inv in enumerate(investors):
        for col, (level, horizon, variety) in enumerate(products):
            verdict = judge(inv, level, ON, horizon=horizon, variety=variety)
            expected = el.CODE[verdict.rule] if not verdict.may_recommend else 0
            if codes[row, col] != expected:
                wrong.append((inv, products[col], el.RULES[codes[row, col]], verdict.rule))
    assert not wrong, f"{len(wrong)} disagreements, e.g. {wrong[:3]}"
    return codes.size


PRODUCTS = [(r, h, v) for r in range(1, 6) for h in range(4) for v in range(-1, 5)]


def test_every_level_objective_horizon_and_variety() -> None:
    investors = [investor(lv, ob, ho, va, ON + dt.timedelta(days=365))
                 for lv in LEVELS for ob in (None, *OBJECTIVES) for ho in (None, *HORIZONS)
                 for va in VARIETY_SETS]
    assert len(investors) == 7 * 6 * 4 * 33
    assert agree(investors, catalogue(PRODUCTS)) == 5544 * 120  # 665,280 pairs


@pytest.mark.parametrize("professional", [False, True])
def test_expiry_and_professional_across_the_rest(professional: bool) -> None:
    expiries = (None, ON, ON - dt.timedelta(days=1))  # none stated, last valid day, expired
    sets = (None, frozenset(), frozenset({"equity"}), frozenset(VARIETIES))
    investors = [investor(lv, ob, ho, va, until, professional)
                 for lv in LEVELS for ob in (None, *OBJECTIVES) for ho in (None, *HORIZONS)
                 for va in sets for until in expiries]
    assert agree(investors, catalogue(PRODUCTS)) == 7 * 6 * 4 * 4 * 3 * 120


def test_the_reported_rule_is_the_first_in_judges_order() -> None:
    # an expired C1 lowest-category assessment refusing an R5 long equity product: LOWEST
    # comes before EXPIRED, which comes before LEVEL, OBJECTIVE, HORIZON, VARIETY
    inv = investor("C1*", "preserve", "short", frozenset({"cash"}), ON - dt.timedelta(days=1))
    cust = el.customers_from_investors(["x"], [inv], [True])
    codes = el.suitability_refusals(cust, catalogue([(5, 3, 2), (1, 3, 2), (1, 1, 2)]),
                                    (ON - dt.date(1970, 1, 1)).days)
    assert [el.RULES[c] for c in codes[0]] == ["LOWEST_CATEGORY", "ASSESSMENT_EXPIRED",
                                              "ASSESSMENT_EXPIRED"]
    valid = investor("C3", "steady", "short", frozenset({"cash"}), None)
    cust = el.customers_from_investors(["y"], [valid], [True])
    codes = el.suitability_refusals(cust, catalogue([(4, 0, -1), (3, 2, 2), (3, 1, 2),
                                                     (3, 1, 0), (1, 0, -1)]),
                                    (ON - dt.date(1970, 1, 1)).days)
    assert [el.RULES[c] for c in codes[0]] == ["LEVEL_MISMATCH", "HORIZON_MISMATCH",
                                              "VARIETY_MISMATCH", "OK", "OK"]


def test_recheck_counts_every_pair_judge_refuses() -> None:
    ok_inv = investor("C4", None, "long", None, None)
    low = investor("C2", None, "long", None, None)
    cust = el.customers_from_investors(["a", "b"], [ok_inv, low], [True, False])
    cat = catalogue([(3, 0, -1), (4, 0, -1)])
    rows, items = np.array([0, 0, 1, 1, 0]), np.array([0, 1, 0, 1, 1])
    got = el.recheck(cust, cat, ON, rows, items)
    # b refused R4 (LEVEL_MISMATCH) and R3 (LEVEL_MISMATCH — decided before his consent)
    assert (got.checked, got.violations) == (5, 2)
    assert {(e["customer_id"], e["item_id"], e["rule"]) for e in got.examples} == {
        ("b", "I0", "LEVEL_MISMATCH"), ("b", "I1", "LEVEL_MISMATCH")}
    # consent alone: a C5 who refused marketing
    cust = el.customers_from_investors(["c"], [investor("C5", None, "long", None, None)],
                                       [False])
    assert el.recheck(cust, cat, ON, np.array([0]), np.array([0])).examples == [
        {"customer_id": "c", "item_id": "I0", "rule": "NO_CONSENT"}]


def _random_customers(rng: np.random.Generator, n: int) -> el.Customers:
    """Every kind of answer, some expired, some professional, some without consent."""
    investors = [investor(str(rng.choice(np.array(LEVELS[1:], dtype=object)))
                          if rng.random() < 0.9 else None,
                          str(rng.choice(OBJECTIVES)) if rng.random() < 0.9 else None,
                          str(rng.choice(HORIZONS)) if rng.random() < 0.9 else None,
                          VARIETY_SETS[rng.integers(0, len(VARIETY_SETS))],
                          ON + dt.timedelta(days=int(rng.integers(-30, 300)))
                          if rng.random() < 0.9 else None,
                          professional=bool(rng.random() < 0.05))
                 for _ in range(n)]
    return el.customers_from_investors([f"c{i}" for i in range(n)], investors,
                                       list(rng.random(n) < 0.9))


def _pairs(rng: np.random.Generator, n: int, m: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, n, size), rng.integers(0, m, size)


def test_the_fast_mask_is_refusals_equal_to_zero() -> None:
    """``Mask`` decides suitability once per distinct answers and slices the pair facts; it
    must equal ``refusals(...) == 0`` for a contiguous block, a single customer and any
    scattered rows."""
    rng = np.random.default_rng(5)
    n = 3000
    cust = _random_customers(rng, n)
    cat = catalogue(PRODUCTS)
    day = (ON - dt.date(1970, 1, 1)).days
    cat.valid_from[::7] = day + 1  # not yet valid
    cat.compliance_ok[::11] = False
    excl = el.Exclusions(_pairs(rng, n, len(cat), 5000), _pairs(rng, n, len(cat), 3000),
                         _pairs(rng, n, len(cat), 4000), rng.random(n) < 0.05)
    filtered = np.zeros(len(cat), bool)
    filtered[::13] = True
    mask = el.Mask(cust, cat, ON, excl, filtered)
    for rows in (np.arange(1000, 2000), np.array([17]), rng.permutation(n)[:700]):
        got = mask.of(rows)
        contiguous = len(rows) == 1 or bool((np.diff(rows) == 1).all())
        part = excl.rows(int(rows[0]), int(rows[-1]) + 1) if contiguous else excl.take(rows, n)
        want = el.refusals(cust.take(rows), cat, ON, part, filtered) == 0
        assert got.shape == want.shape and (got == want).all()
        assert len(rows) == 1 or 0 < got.mean() < 1  # both outcomes occur


def test_answers_refuse_a_value_outside_its_bits() -> None:
    cust = _random_customers(np.random.default_rng(1), 4)
    cust.objective[2] = 9  # three bits hold 0..7: two customers could share a key
    with pytest.raises(ValueError, match="objective"):
        el.answers(cust, np.arange(4), 0)


def test_recheck_gives_each_pair_judges_verdict_across_blocks() -> None:
    """The re-check judges each distinct (answers, consent, product) once and carries the
    verdicts in ``memo`` from block to block: every pair must still get exactly what
    ``judge`` (then consent, then validity) says of it."""
    rng = np.random.default_rng(9)
    n = 2000
    cust = _random_customers(rng, n)
    cat = catalogue(PRODUCTS)
    day = (ON - dt.date(1970, 1, 1)).days
    cat.valid_until[::9] = day - 1  # expired content
    rows, items = _pairs(rng, n, len(cat), 12_000)
    want = []
    for r, i in zip(rows.tolist(), items.tolist(), strict=True):
        verdict = judge(cust.investor(r), cat.level(i), ON, horizon=cat.horizon_name(i),
                        variety=cat.variety_name(i))
        rule = (verdict.rule if not verdict.may_recommend else
                "NO_CONSENT" if not cust.consent[r] else
                "NOT_VALID" if not cat.valid_on(day)[i] else None)
        if rule is not None:
            want.append({"customer_id": f"c{r}", "item_id": f"I{i}", "rule": rule})
    memo: dict[int, str | None] = {}
    first = el.recheck(cust, cat, ON, rows[:6000], items[:6000], 10**6, memo)
    judged = len(memo)
    second = el.recheck(cust, cat, ON, rows[6000:], items[6000:], 10**6, memo)
    assert first.checked + second.checked == 12_000
    assert first.examples + second.examples == want
    assert first.violations + second.violations == len(want) > 1000
    assert len(memo) < judged * 2  # the second block reused verdicts of the first
