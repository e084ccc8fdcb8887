"""Identity linking decisions and preference-group rules, without storage."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from caifu.core.errors import ConfigError
from caifu.core.expressions import ExpressionError
from caifu.scrm import groups as g
from caifu.scrm.linking import ContactFacts, CustomerRef, decide, mask_unionid, mobile_key

A = CustomerRef("C001", "张伟", "13800138001", "A01")
B = CustomerRef("C002", "王芳", "13800138002", "A02")
B_SAME_MOBILE = CustomerRef("C003", "李娜", "+86 138-0013-8001", "A01")


def test_mobile_keys_ignore_prefix_and_separators() -> None:
    assert mobile_key("+86 138-0013-8001") == mobile_key("8613800138001") == "13800138001"
    assert mobile_key("12345") is None and mobile_key(None) is None


def test_unique_remark_mobile_links_with_masked_evidence() -> None:
    facts = ContactFacts("wm1", ("A01",), remark_mobiles=("138 0013 8001",))
    d = decide(facts, [A, B], ())
    assert (d.outcome, d.customer_id) == ("link", "C001")
    (cand,) = d.candidates
    assert [(e.kind, e.strength, e.value) for e in cand.evidence] == [
        ("mobile", "strong", "138****8001")]
    assert "13800138001" not in json.dumps([e.as_json() for e in cand.evidence])


def test_unionid_linked_to_exactly_one_customer_links() -> None:
    facts = ContactFacts("wm1", unionid="o6_bmABCDEFGHIJKLMNOPQ")
    d = decide(facts, [], {"C002"})
    assert (d.outcome, d.customer_id) == ("link", "C002")
    assert d.candidates[0].evidence[0].value == mask_unionid("o6_bmABCDEFGHIJKLMNOPQ")
    assert "ABCDEFGHIJ" not in d.candidates[0].evidence[0].value
    both = decide(ContactFacts("wm1", unionid="o6_bmX", remark_mobiles=("13800138002",)),
                  [B], {"C002"})
    assert both.outcome == "link" and both.candidates[0].score == pytest.approx(0.99)


@pytest.mark.parametrize(("facts", "customers", "union", "expected"), [
    # mobile says A, unionid says B
    (ContactFacts("wm1", unionid="o6_x", remark_mobiles=("13800138001",)), [A], {"C002"},
     {"C001", "C002"}),
    # one mobile, two customers (a family sharing it)
    (ContactFacts("wm1", remark_mobiles=("13800138001",)), [A, B_SAME_MOBILE], (),
     {"C001", "C003"}),
    # unionid linked to two customers already
    (ContactFacts("wm1", unionid="o6_x"), [], {"C001", "C002"}, {"C001", "C002"}),
])
def test_conflicting_evidence_goes_to_review(facts: ContactFacts, customers: list[CustomerRef],
                                             union: set[str], expected: set[str]) -> None:
    d = decide(facts, customers, union)
    assert d.outcome == "review" and d.customer_id is None
    assert {c.customer_id for c in d.candidates} == expected
    assert "conflicting" in d.reason


def test_weak_name_evidence_goes_to_review_and_nothing_gives_none() -> None:
    d = decide(ContactFacts("wm1", ("A01",), remark="张伟"), [A], ())
    assert d.outcome == "review"
    assert [(e.kind, e.value) for e in d.candidates[0].evidence] == [("name_advisor", "张*")]
    assert d.candidates[0].score == pytest.approx(0.5)
    other_advisor = decide(ContactFacts("wm1", ("A09",), name="张伟"), [A], ())
    assert other_advisor.candidates[0].evidence[0].kind == "name"
    assert decide(ContactFacts("wm1"), [A, B], ()).outcome == "none"


def test_many_namesakes_are_no_evidence() -> None:
    zhangs = [CustomerRef(f"C1{i}", "张伟", None, "A05") for i in range(5)]
    assert decide(ContactFacts("wm1", ("A01",), remark="张伟"), zhangs, ()).outcome == "none"


def test_advisors_namesake_against_a_mobile_is_a_conflict_but_a_stranger_is_not() -> None:
    namesake_of_advisor = CustomerRef("C009", "王芳", None, "A01")
    facts = ContactFacts("wm1", ("A01",), remark_mobiles=("13800138001",), remark="王芳")
    d = decide(facts, [A, namesake_of_advisor], ())
    assert d.outcome == "review" and {c.customer_id for c in d.candidates} == {"C001", "C009"}
    stranger = CustomerRef("C009", "王芳", None, "A07")
    assert decide(facts, [A, stranger], ()).customer_id == "C001"


def test_declined_pairs_are_not_proposed_and_links_are_not_replaced() -> None:
    facts = ContactFacts("wm1", remark_mobiles=("13800138001",))
    assert decide(facts, [A], (), declined={"C001"}).outcome == "none"
    d = decide(facts, [A], (), current="C002")
    assert d.outcome == "review" and "already linked" in d.reason


# --- preference groups ----------------------------------------------------------------------

ON = dt.date(2026, 3, 2)
C4 = g.Assessment("C4", dt.date(2027, 1, 1))
C2 = g.Assessment("C2", dt.date(2027, 1, 1))


def test_group_rules_are_tag_set_algebra() -> None:
    expr = g.check_rule("tag:a and not tag:b or tag:c", {"a", "b", "c"})
    holders = {"a": {"1", "2"}, "b": {"2"}, "c": {"5"}}
    assert g.rule_members(expr, holders, {"1", "2", "3", "4", "5"}) == {"1", "5"}
    with pytest.raises(ExpressionError, match="tags only"):
        g.check_rule("aum > 0", {"a"})
    with pytest.raises(ExpressionError):
        g.check_rule("tag:nope", {"a"})
    with pytest.raises(ConfigError, match="risk level"):
        g.check_policy("homogeneous", None)


def test_plan_statuses_and_homogeneous_exclusion() -> None:
    p = g.plan_members(policy="homogeneous", risk_level="C4",
                       matching={"in", "new", "low", "nofollow", "gone", "stale"},
                       followers={"in", "new", "low", "gone", "stale"}, active={"in", "odd"},
                       left={"gone": dt.datetime(2026, 2, 1)},
                       assessments={"in": C4, "new": C4, "low": C2, "odd": C2,
                                    "stale": g.Assessment("C4", dt.date(2026, 1, 1))}, on=ON)
    status = {r.customer_id: r.status for r in p.rows}
    assert status == {"in": "member", "new": "invite", "low": "excluded", "nofollow": "excluded",
                      "gone": "left", "stale": "excluded", "odd": "excluded"}
    reasons = {r.customer_id: r.reason for r in p.rows}
    assert "C2" in reasons["low"] and "企业微信" in reasons["nofollow"] and "过期" in reasons["stale"]
    assert p.lowest_level == "C4"


def test_lowest_member_blocks_r4_content_with_a_c2_member() -> None:
    v = g.judge_group("lowest_member", None, {"x": C4, "y": C2}, "R4", ON)
    assert not v.may_recommend and v.verdict.investor_level == "C2"
    assert v.lowest_customers == ("y",)
    assert g.judge_group("lowest_member", None, {"x": C4, "y": C2}, "R2", ON).may_recommend
    # an unidentified chat member is an unassessed one
    assert not g.judge_group("lowest_member", None, {"x": C4}, "R1", ON, unidentified=1
                             ).may_recommend
    lowest_cat = g.Assessment("C1", dt.date(2027, 1, 1), no_loss_tolerance=True)
    assert g.judge_group("lowest_member", None, {"x": C4, "z": lowest_cat}, "R2", ON
                         ).verdict.outcome == "prohibited"
