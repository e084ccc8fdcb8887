"""Campaigns, the pure part: the gate one customer passes before anything is sent, and the
attribution of conversions over stored rows (the funnel's counts and rates are governed
metrics: ``data/metrics/campaigns.yaml``). No connections: the service gathers
the facts (assessment, consent, recent sends, the composed message) and stores what comes
back.

A decision checks, in this order, and the first failure is the deciding rule (every
failure is kept in ``reasons``, so a customer can be told all of why):

    CONTENT_PROHIBITED   the message says what may not be said (compliance lexicon)
    FOOTER_MISSING       the risk footer, SAC number, R-level or research disclaimer is absent
    NO_CONSENT           no marketing consent on record
    <suitability rule>   NO_ASSESSMENT, LOWEST_CATEGORY, ASSESSMENT_EXPIRED, LEVEL_MISMATCH,
                         OBJECTIVE_MISMATCH (core.suitability.judge)
    FREQUENCY_CAP        already reached N times in the last D days
    NOT_REACHABLE        no active WeCom follow to send through
    OK                   send
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from caifu.core.suitability import (
    OBJECTIVE_MAX,
    RULE_VERSION,
    Investor,
    judge,
    level_rank,
    lowest,
)
from caifu.text import compliance

GATE_VERSION: Final = "gate.1"
# stored per decision (≤ 32 characters): the suitability rules and this gate's order/rules
DECISION_RULE_VERSION: Final = f"{RULE_VERSION}/{GATE_VERSION}"
STAGES: Final = ("targeted", "sent", "delivered", "opened", "clicked", "converted")
# what counts as converted, by the campaign's goal (None: any of the three basic ones)
CONVERSIONS: Final[dict[str | None, tuple[str, ...]]] = {
    "account_opened": ("account_opened",),
    "funded": ("funded",),
    "fund_purchase": ("product_bought",),
    "reactivation": ("product_bought",),
    "chinext_opened": ("chinext_opened",),
    "level2": ("level2",),
    None: ("account_opened", "funded", "product_bought"),
}
STATE_MAX: Final = 30  # WeCom's limit on a contact way's state

Outcome = Literal["send", "blocked"]


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``max_sends`` campaign messages per customer in any ``days`` days."""

    max_sends: int = 2
    days: int = 7

    def __post_init__(self) -> None:
        if self.max_sends < 1 or self.days < 1:
            raise ValueError("a frequency cap needs max_sends ≥ 1 and days ≥ 1")


@dataclass(frozen=True)
class MessageCheck:
    """What the compliance check found in one composed message."""

    prohibited: tuple[str, ...] = ()  # phrases the lexicon flags (negated hits excluded)
    missing_footer: tuple[str, ...] = ()  # required footer parts absent from the text
    lexicon_version: str = ""


@dataclass(frozen=True)
class Target:
    """One customer as the gate sees him."""

    customer_id: str
    investor: Investor
    marketing_consent: bool | None
    recent_sends: tuple[dt.datetime, ...] = ()
    reachable: bool = True


@dataclass(frozen=True)
class Decision:
    customer_id: str
    outcome: Outcome
    rule: str
    reasons: tuple[str, ...]
    investor_level: str | None
    product_level: str | None
    rule_version: str = DECISION_RULE_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def send(self) -> bool:
        return self.outcome == "send"


FOOTER_PARTS: Final = {"risk_warning": "风险提示「市场有风险，投资需谨慎。」",
                       "advisor_name": "投顾姓名", "sac_number": "投顾执业注册编号",
                       "risk_level": "内容风险等级",
                       "research_disclaimer": "「仅供参考，不构成投资建议」"}


def compose(title: str, link: str, advisor_name: str | None, sac_number: str | None,
            risk_level: str, research: bool) -> str:
    """The pushed text: title, link, and the footer compliance requires — left without a
    footer when the advisor's name or SAC number cannot make one (the gate then blocks)."""
    try:
        tail = compliance.footer(advisor_name or "", sac_number or "", risk_level, research)
    except ValueError:
        tail = ""
    return f"{title}\n{link}\n{tail}".rstrip()


def check_message(text: str, *, advisor_name: str | None, risk_level: str, research: bool,
                  lexicon: compliance.Lexicon | None = None) -> MessageCheck:
    """The compliance lexicon and footer check of one composed message (advisor's words)."""
    lex = lexicon or compliance.default_lexicon()
    found = lex.check_content(text, research=research, advisor_name=advisor_name,
                              risk_level=risk_level)
    prohibited = tuple(dict.fromkeys(f.matched for f in found.findings if f.action == "review"))
    missing = tuple(FOOTER_PARTS.get(m, m) for m in found.footer_missing)
    return MessageCheck(prohibited, missing, lex.version)


def recent_count(sends: Iterable[dt.datetime], on: dt.datetime, days: int) -> int:
    """Sends in the ``days`` days up to ``on`` (a later one, e.g. a clock skew, counts too)."""
    since = on - dt.timedelta(days=days)
    return sum(1 for s in sends if s > since)


def decide(target: Target, product_level: str, message: MessageCheck, on: dt.datetime,
           cap: FrequencyCap = FrequencyCap()) -> Decision:
    """Send this message to this customer now, or not — and on which rule."""
    failures: list[tuple[str, str]] = []
    if message.prohibited:
        failures.append(("CONTENT_PROHIBITED", "内容含违规表述：" + "、".join(message.prohibited)
                         + (f"（词库 {message.lexicon_version}）" if message.lexicon_version
                            else "")))
    if message.missing_footer:
        failures.append(("FOOTER_MISSING", "缺少必备风险提示：" + "、".join(message.missing_footer)))
    if not target.marketing_consent:
        failures.append(("NO_CONSENT", "客户未同意接收营销信息"))
    verdict = judge(target.investor, product_level, on.date())
    if not verdict.may_recommend:
        failures.append((verdict.rule, "；".join(verdict.reasons)))
    n = recent_count(target.recent_sends, on, cap.days)
    if n >= cap.max_sends:
        failures.append(("FREQUENCY_CAP", f"{cap.days} 天内已触达 {n} 次，上限 {cap.max_sends} 次"))
    if not target.reachable:
        failures.append(("NOT_REACHABLE", "客户未添加投顾企业微信（无有效好友关系）"))
    level = target.investor.level
    if failures:
        return Decision(target.customer_id, "blocked", failures[0][0],
                        tuple(reason for _, reason in failures), level, product_level)
    return Decision(target.customer_id, "send", "OK", verdict.reasons, level, product_level)


def group_investor(members: Sequence[Investor]) -> Investor:
    """The investor a group message is judged as: its lowest member (``lowest``), with the
    strictest of everyone's flags — a lowest-category member, the earliest expiry and the
    most conservative objective bind the whole group. An empty group is unassessed."""
    if not members:
        return Investor(level=None)
    level = lowest([m.level for m in members])
    expiries = [m.valid_until for m in members if m.valid_until is not None]
    objectives = [m.objective for m in members if m.objective in OBJECTIVE_MAX]
    objective = min(objectives, key=lambda o: level_rank(OBJECTIVE_MAX[o]), default=None)
    return Investor(level=level, valid_until=min(expiries, default=None),
                    no_loss_tolerance=any(m.lowest_category for m in members),
                    no_civil_capacity=False, objective=objective, professional=False)


def qr_state(campaign_id: str) -> str:
    """The channel QR's ``state``: the campaign id when it fits WeCom's 30 characters,
    otherwise a stable digest of it (the contact_ways row maps it back)."""
    state = f"cf-{campaign_id}"
    if len(state) <= STATE_MAX:
        return state
    return "cf-" + hashlib.sha256(campaign_id.encode()).hexdigest()[:STATE_MAX - 3]


# --- attribution ------------------------------------------------------------------------

@dataclass(frozen=True)
class Fact:
    """Something the customer did that may be a conversion; ``at`` is a UTC datetime or a
    calendar date in the tenant's time zone (dates of confirmations and account opening)."""

    customer_id: str
    kind: str
    at: dt.datetime | dt.date


def attribute(sent_at: dt.datetime, facts: Iterable[Fact], kinds: Sequence[str], days: int,
              utc_offset: dt.timedelta = dt.timedelta(hours=8)) -> tuple[str, dt.datetime] | None:
    """The first fact of ``kinds`` within ``days`` after ``sent_at`` (naive UTC), as
    (kind, UTC time). A date-only fact counts by calendar day in the tenant's zone, from the
    day of sending to ``days`` later, and is timed at the later of its local midnight and
    the send."""
    end = sent_at + dt.timedelta(days=days)
    first_day = (sent_at + utc_offset).date()
    best: tuple[dt.datetime, str] | None = None
    for f in facts:
        if f.kind not in kinds:
            continue
        if isinstance(f.at, dt.datetime):
            if not sent_at <= f.at <= end:
                continue
            at = f.at
        else:
            if not first_day <= f.at <= first_day + dt.timedelta(days=days):
                continue
            at = max(sent_at, dt.datetime.combine(f.at, dt.time()) - utc_offset)
        if best is None or at < best[0]:
            best = (at, f.kind)
    return None if best is None else (best[1], best[0])
