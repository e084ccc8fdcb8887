"""Risk alerts and advisor tasks, the rules without storage: the event classes, the task
workflow, when a story repeats an event already alerted, and the warning an advisor may send.

    open ──► acknowledged ──► contacted ──► done
      │            │              │
      └────────────┴──────────────┴──► dismissed (with a reason)

A task moves forward one step at a time (``open → contacted`` skips the acknowledgement and is
refused), or is dismissed from any open state with a reason; ``done`` and ``dismissed`` are
final. The warning states facts (the story, the holding) and recommends nothing: there is no
product, so there is nothing whose risk level could exceed the customer's — the customer's
level is shown to the advisor beside it, not used to sell.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Final

from caifu.core.errors import ConfigError

EVENT_TYPES: Final = ("regulatory_investigation", "administrative_penalty", "share_pledge_risk",
                      "shareholder_reduction", "bond_default", "delisting_risk",
                      "audit_qualified_opinion", "executive_detained", "major_litigation",
                      "earnings_warning", "none")
POLARITIES: Final = ("negative", "neutral", "positive")
EVENT_NAMES: Final = {
    "regulatory_investigation": "立案调查", "administrative_penalty": "行政处罚",
    "share_pledge_risk": "股权质押风险", "shareholder_reduction": "大股东减持",
    "bond_default": "债券违约", "delisting_risk": "退市风险",
    "audit_qualified_opinion": "非标审计意见", "executive_detained": "高管被留置或调查",
    "major_litigation": "重大诉讼", "earnings_warning": "业绩预警"}

# a story about the same company and event type this close to an alerted one is the same event
EVENT_WINDOW: Final = dt.timedelta(days=30)

STATUSES: Final = ("open", "acknowledged", "contacted", "done", "dismissed")
FINAL: Final = frozenset({"done", "dismissed"})
OPEN_STATUSES: Final = tuple(x for x in STATUSES if x not in FINAL)
STATUS_NAMES: Final = {"open": "待处理", "acknowledged": "已确认", "contacted": "已联系客户",
                       "done": "已完成", "dismissed": "已忽略"}
OPTED_OUT: Final = "客户已退订消息推送：请勿群发此文本，可通过服务渠道（电话）告知"
_NEXT: Final = {"open": "acknowledged", "acknowledged": "contacted", "contacted": "done"}


def check_transition(current: str, new: str, reason: str = "") -> None:
    """Nothing if a task may move from ``current`` to ``new``; else a ConfigError naming the
    moves allowed from ``current``."""
    if new not in STATUSES:
        raise ConfigError(f"unknown task status {new!r}; one of {', '.join(STATUSES)}")
    if new == "dismissed" and len(reason.strip()) < 4:
        raise ConfigError("dismissing a task needs a reason (at least 4 characters)")
    if current in FINAL:
        raise ConfigError(f"the task is {current}: it cannot change any more")
    if new == "dismissed" or _NEXT.get(current) == new:
        return
    allowed = [_NEXT[current], "dismissed"] if current in _NEXT else []
    raise ConfigError(f"a task cannot move from {current} to {new}; from {current}: "
                      + ", ".join(allowed))


def next_status(current: str) -> str | None:
    """The one forward step from ``current``, None from ``done`` and ``dismissed`` (a task in
    any other state may also be dismissed, with a reason)."""
    return _NEXT.get(current)


def check_classification(event_type: str, polarity: str) -> None:
    if event_type not in EVENT_TYPES:
        raise ConfigError(f"unknown event type {event_type!r}; one of {', '.join(EVENT_TYPES)}")
    if polarity not in POLARITIES:
        raise ConfigError(f"unknown polarity {polarity!r}; one of {', '.join(POLARITIES)}")


def alert_id(story_id: str, customer_id: str, security_code: str) -> str:
    digest = hashlib.sha256(f"{story_id}\n{customer_id}\n{security_code}".encode())
    return "ra" + digest.hexdigest()[:30]


def task_id(alert: str) -> str:
    return "rt" + alert[2:]


@dataclass(frozen=True)
class AdvisorMessage:
    """The message an advisor may send, and whether he may send it as it is."""

    text: str
    may_send: bool
    notes: tuple[str, ...]


def warning(*, company: str, code: str, event_type: str, title: str, published: dt.date,
            site_count: int, customer_level: str | None, consent: bool | None,
            prohibited: tuple[str, ...] = (), direct: bool = True,
            funds: tuple[str, ...] = ()) -> AdvisorMessage:
    """A factual notice of a published story about a company the customer holds — directly
    (``direct``) and/or through the funds named in ``funds`` (``名称（代码）``) whose disclosed
    top holdings include it. No advice: neither to sell nor to hold; no forecast. ``consent``
    False (the customer opted out of messages) withholds it: the advisor contacts him through
    the service channel instead."""
    event = EVENT_NAMES.get(event_type, event_type)
    held = f"{company}（{code}）"
    if funds:
        shown = "、".join(funds[:3]) + (f"等{len(funds)}只基金" if len(funds) > 3 else "")
        held = (f"{held}（您持有的基金{shown}披露的前十大重仓股也包含该公司）" if direct
                else f"基金{shown}披露的前十大重仓股{held}")
    text = (f"您好，提示一则与您持有的{held}相关的公开信息："
            f"{published:%Y年%m月%d日}，有{site_count}处公开来源报道“{title}”"
            f"（事件类别：{event}）。以上为公开信息摘录，不构成投资建议，"
            "请以上市公司公告为准，如需了解详情可联系您的服务投顾。")
    notes = [f"客户风险等级：{customer_level or '未测评'}；本提示不涉及任何产品，无适当性匹配问题"]
    may_send = True
    if consent is False:
        may_send = False
        notes.append(OPTED_OUT)
    if prohibited:
        may_send = False
        notes.append("文本含违规表述：" + "、".join(prohibited))
    return AdvisorMessage(text, may_send, tuple(notes))
