"""The campaign gate, one rule at a time, and the funnel and attribution arithmetic."""

from __future__ import annotations

import datetime as dt

import pytest

from caifu.core.suitability import RULE_VERSION, Investor
from caifu.scrm import campaigns as g

ON = dt.datetime(2025, 3, 3, 2, 0)  # 10:00 in Shanghai
SAC = "A0120612345678"
OK_INVESTOR = Investor("C3", dt.date(2026, 1, 1), objective="steady")


def _message(text: str | None = None, research: bool = True) -> g.MessageCheck:
    text = text or g.compose("新能源行业周报", "https://t.example/t/x", "李四", SAC, "R3", research)
    return g.check_message(text, advisor_name="李四", risk_level="R3", research=research)


def _target(**kw: object) -> g.Target:
    base: dict[str, object] = {"customer_id": "C1", "investor": OK_INVESTOR,
                               "marketing_consent": True}
    return g.Target(**{**base, **kw})  # type: ignore[arg-type]


def test_a_suitable_consenting_customer_is_sent_with_the_rule_version() -> None:
    d = g.decide(_target(), "R3", _message(), ON)
    assert (d.outcome, d.rule, d.investor_level, d.product_level) == ("send", "OK", "C3", "R3")
    assert d.rule_version == g.DECISION_RULE_VERSION and d.rule_version.startswith(RULE_VERSION)
    assert len(d.rule_version) <= 32  # campaign_decisions.rule_version is String(32)


@pytest.mark.parametrize(("investor", "level", "rule"), [
    (Investor(None), "R1", "NO_ASSESSMENT"),
    (Investor("C1", dt.date(2026, 1, 1), no_loss_tolerance=True), "R2", "LOWEST_CATEGORY"),
    (Investor("C1", dt.date(2026, 1, 1), no_civil_capacity=True), "R2", "LOWEST_CATEGORY"),
    (Investor("C4", dt.date(2025, 3, 2)), "R3", "ASSESSMENT_EXPIRED"),
    (Investor("C2", dt.date(2026, 1, 1)), "R3", "LEVEL_MISMATCH"),
    (Investor("C5", dt.date(2026, 1, 1), objective="preserve"), "R3", "OBJECTIVE_MISMATCH"),
])
def test_each_suitability_rule_blocks_with_its_code(investor: Investor, level: str,
                                                    rule: str) -> None:
    d = g.decide(_target(investor=investor), level, _message(), ON)
    assert (d.outcome, d.rule) == ("blocked", rule)
    assert d.reasons and all(isinstance(r, str) and r for r in d.reasons)


def test_lowest_category_is_hard_blocked_even_when_professional() -> None:
    inv = Investor("C1", dt.date(2026, 1, 1), no_loss_tolerance=True, professional=True)
    assert g.decide(_target(investor=inv), "R2", _message(), ON).rule == "LOWEST_CATEGORY"
    assert g.decide(_target(investor=inv), "R1", _message(), ON).outcome == "send"


@pytest.mark.parametrize("consent", [False, None])
def test_no_marketing_consent_blocks(consent: bool | None) -> None:
    d = g.decide(_target(marketing_consent=consent), "R3", _message(), ON)
    assert (d.outcome, d.rule) == ("blocked", "NO_CONSENT")
    assert d.reasons == ("客户未同意接收营销信息",)


def test_frequency_cap_counts_sends_inside_the_window_only() -> None:
    cap = g.FrequencyCap(max_sends=2, days=7)
    two = (ON - dt.timedelta(days=1), ON - dt.timedelta(days=6, hours=23))
    d = g.decide(_target(recent_sends=two), "R3", _message(), ON, cap)
    assert (d.outcome, d.rule) == ("blocked", "FREQUENCY_CAP") and "7 天内已触达 2 次" in d.reasons[0]
    one_old = (ON - dt.timedelta(days=1), ON - dt.timedelta(days=7, minutes=1))
    assert g.decide(_target(recent_sends=one_old), "R3", _message(), ON, cap).send
    assert g.decide(_target(recent_sends=two), "R3", _message(), ON,
                    g.FrequencyCap(max_sends=3, days=7)).send
    with pytest.raises(ValueError):
        g.FrequencyCap(max_sends=0)


def test_prohibited_wording_blocks_but_a_negated_phrase_does_not() -> None:
    bad = g.compose("稳健之选，保本高收益", "https://t.example/t/x", "李四", SAC, "R3", True)
    d = g.decide(_target(), "R3", _message(bad), ON)
    assert (d.outcome, d.rule) == ("blocked", "CONTENT_PROHIBITED")
    assert "保本" in d.reasons[0] and "词库" in d.reasons[0]
    fine = g.compose("我们不承诺保本，请理性投资", "https://t.example/t/x", "李四", SAC, "R3",
                     True)
    assert g.decide(_target(), "R3", _message(fine), ON).send


def test_a_message_without_its_footer_is_blocked() -> None:
    d = g.decide(_target(), "R3", _message("新能源行业周报\nhttps://t.example/t/x"), ON)
    assert (d.outcome, d.rule) == ("blocked", "FOOTER_MISSING")
    assert "市场有风险" in d.reasons[0] and "执业注册编号" in d.reasons[0]
    # an advisor without a valid SAC number cannot make a footer: the text goes without one
    text = g.compose("新能源行业周报", "https://t.example/t/x", "李四", None, "R3", True)
    assert "市场有风险" not in text
    assert g.decide(_target(), "R3", _message(text), ON).rule == "FOOTER_MISSING"
    # research needs its disclaimer; an advisor view does not
    view = g.compose("观点", "https://t.example/t/x", "李四", SAC, "R3", False)
    assert g.decide(_target(), "R3", _message(view, research=False), ON).send
    assert g.decide(_target(), "R3", _message(view, research=True), ON).rule == "FOOTER_MISSING"


def test_the_first_failure_decides_and_every_failure_is_a_reason() -> None:
    d = g.decide(_target(marketing_consent=False, investor=Investor("C1", dt.date(2026, 1, 1)),
                         reachable=False), "R3", _message(), ON)
    assert d.rule == "NO_CONSENT" and len(d.reasons) == 3
    assert d.reasons[-1].startswith("客户未添加投顾企业微信")
    assert g.decide(_target(reachable=False), "R3", _message(), ON).rule == "NOT_REACHABLE"


def test_a_group_is_judged_as_its_lowest_member() -> None:
    members = [Investor("C4", dt.date(2026, 1, 1), objective="growth"),
               Investor("C2", dt.date(2025, 12, 1), objective="income")]
    inv = g.group_investor(members)
    assert (inv.level, inv.valid_until, inv.objective) == ("C2", dt.date(2025, 12, 1), "income")
    assert g.decide(g.Target("grp", inv, True), "R3", _message(), ON).rule == "LEVEL_MISMATCH"
    assert g.decide(g.Target("grp", inv, True), "R2", _message(), ON).send
    lowest = g.group_investor([*members, Investor("C1", dt.date(2026, 1, 1),
                                                  no_loss_tolerance=True)])
    assert lowest.lowest_category
    assert g.decide(g.Target("grp", lowest, True), "R2", _message(), ON).rule == \
        "LOWEST_CATEGORY"
    unassessed = g.group_investor([*members, Investor(None)])
    assert g.decide(g.Target("grp", unassessed, True), "R1", _message(), ON).rule == \
        "NO_ASSESSMENT"


def test_qr_state_fits_wecom() -> None:
    assert g.qr_state("HD20250301") == "cf-HD20250301"
    long = g.qr_state("X" * 40)
    assert len(long) == 30 and long == g.qr_state("X" * 40) != g.qr_state("Y" * 40)


def test_attribution_window_on_times_and_calendar_days() -> None:
    sent = dt.datetime(2025, 3, 3, 2, 0)
    facts = [g.Fact("C1", "funded", dt.datetime(2025, 3, 2, 23, 0)),  # before the send
             g.Fact("C1", "funded", dt.datetime(2025, 3, 20, 0, 0)),  # after 14 days
             g.Fact("C1", "product_bought", dt.datetime(2025, 3, 5, 1, 0))]
    assert g.attribute(sent, facts, ("funded",), 14) is None
    assert g.attribute(sent, facts, ("funded", "product_bought"), 14) == (
        "product_bought", dt.datetime(2025, 3, 5, 1, 0))
    assert g.attribute(sent, facts, ("funded",), 17) == ("funded", dt.datetime(2025, 3, 20))
    # a confirmation day: the send's own local day counts, timed no earlier than the send
    day = [g.Fact("C1", "product_bought", dt.date(2025, 3, 3))]
    assert g.attribute(sent, day, ("product_bought",), 14) == ("product_bought", sent)
    late = [g.Fact("C1", "account_opened", dt.date(2025, 3, 18))]
    assert g.attribute(sent, late, ("account_opened",), 14) is None
    assert g.attribute(sent, late, ("account_opened",), 15) == (
        "account_opened", dt.datetime(2025, 3, 17, 16, 0))
