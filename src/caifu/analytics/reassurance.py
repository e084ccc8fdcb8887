"""Fund-redemption analysis, question 4: which current fund holders need reassurance before
they redeem — redemption waves in the market (``daily_redemptions``, ``redemption_waves``)
and a ranked list of holders with the reasons that put them on it (``reassurance_list``,
scored by ``ReassuranceRules``). Positions come from ``pipelines/fund_ledger.holder_positions``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from caifu.core.money import pct
from caifu.pipelines.amounts import money

# --- question 4: which holders need reassurance ----------------------------------------------

REASONS = {  # code: Chinese label
    "fund_drawdown": "持有基金净值回撤",
    "resembles_redeemers": "在本轮或往期赎回高峰中赎回过",
    "recent_loss": "近期亏损",
    "chat_signal": "聊天中流露赎回意向或不满",
}


@dataclass(frozen=True)
class ReassuranceRules:
    """Thresholds and points of the reassurance score (a tenant may pass its own)."""

    drawdown: float = 0.05  # the fund's NAV this far below its high of the lookback
    lookback_days: int = 60
    loss: float = 0.05  # a position this far below its paid-in cost
    history_days: int = 730  # redemption waves looked back at
    wave_window_days: int = 10
    wave_factor: float = 3.0  # × the median count of a window
    wave_minimum: int = 10  # redemptions in a window, at least
    chat_tags: tuple[str, ...] = ("intent_redeem", "complaint", "loss_anxiety")
    loss_tags: tuple[str, ...] = ("recent_loss",)
    points: dict[str, int] = field(default_factory=lambda: {
        "fund_drawdown": 1, "resembles_redeemers": 2, "recent_loss": 1, "chat_signal": 2})


def daily_redemptions(fund_tx: ir.Table, start: date, end: date) -> ir.Table:
    """Redemptions per confirmation date in ``[start, end]``: ``txn_date, redemptions, amount``."""
    r = fund_tx.filter((fund_tx.txn_type == "redeem") & fund_tx.txn_date.between(start, end))
    return r.group_by("txn_date").aggregate(redemptions=r.count(),
                                            amount=money(r.amount.sum())).order_by("txn_date")


def redemption_waves(daily: pa.Table, start: date, end: date, window_days: int = 10,
                     factor: float = 3.0, minimum: int = 10) -> pa.Table:
    """Redemption waves (赎回高峰) in ``[start, end]`` from ``daily_redemptions``.

    A day is *high* when the redemptions of the ``window_days`` calendar days ending on it are
    at least ``max(factor × median window, minimum)`` — the median over every full window of
    the range, so the baseline is the tenant's own. A wave runs from ``window_days - 1`` days before its
    first high day to its last, and waves that touch are one; ``baseline`` is the median.
    """
    n = (end - start).days + 1
    counts = np.zeros(n)
    for d, k in zip(daily["txn_date"].to_pylist(), daily["redemptions"].to_pylist(), strict=True):
        if start <= d <= end:
            counts[(d - start).days] += k
    window = np.convolve(counts, np.ones(window_days))[:n]
    full = window[window_days - 1:] if n >= window_days else window
    baseline = float(np.median(full)) if n else 0.0
    high = window >= max(factor * baseline, minimum)
    spans: list[list[int]] = []  # [first, last] day offsets; touching or overlapping merge
    for i in np.flatnonzero(high):
        first = max(0, int(i) - window_days + 1)
        if spans and first <= spans[-1][1] + 1:
            spans[-1][1] = int(i)
        else:
            spans.append([first, int(i)])
    rows = [{"wave_start": start + timedelta(days=lo), "wave_end": start + timedelta(days=hi),
             "redemptions": int(counts[lo:hi + 1].sum()),
             "peak_window": int(window[lo:hi + 1].max()), "baseline": baseline}
            for lo, hi in spans]
    schema = pa.schema([("wave_start", pa.date32()), ("wave_end", pa.date32()),
                        ("redemptions", pa.int64()), ("peak_window", pa.int64()),
                        ("baseline", pa.float64())])
    return pa.Table.from_pylist(rows, schema=schema)




def reassurance_list(positions: pa.Table, redemptions: pa.Table, waves: pa.Table,
                     tags: pa.Table | None = None, rules: ReassuranceRules | None = None,
                     tag_names: dict[str, str] | None = None,
                     current_from: date | None = None) -> pa.Table:
    """Question 4: current holders ranked by a transparent score, each with its reasons.

    ``positions`` from ``holder_positions``; ``redemptions`` the customers' redemptions
    (``customer_id, fund_code, txn_date``) of the history window and ``waves`` its
    ``redemption_waves``; ``tags`` the tags held (``customer_id, tag_id``). Each reason a
    customer has earns its points once:

    - ``fund_drawdown``: holds a fund at least ``drawdown`` below its recent high;
    - ``resembles_redeemers``: redeemed during a redemption wave of the history window — the
      behaviour of the customers who redeem after a fall. The window runs to the list's date,
      so the current wave counts too: a holder who already redeemed part of their funds in
      this wave and still holds others is the likeliest to redeem the rest. A wave ending on
      or after ``current_from`` (the analysed period's start) is the current one
      (``本轮赎回高峰``, ``current_wave`` in the evidence); earlier ones are ``往期`` (without
      ``current_from``, neither is said and ``current_wave`` is null);
    - ``recent_loss``: a fund position at least ``loss`` below its paid-in cost, or a loss tag
      (a position holding shares from before the history has no known cost: not judged);
    - ``chat_signal``: holds a chat tag (redemption intent, complaint, loss anxiety).

    Ranked by score, then by the number of pieces of evidence, fund value and customer id;
    customers with no reason are left out.
    """
    rules = rules or ReassuranceRules()
    names = tag_names or {}
    found: dict[str, dict[str, list[tuple[str, dict[str, Any]]]]] = {}
    info: dict[str, dict[str, Any]] = {}

    def add(cid: str, code: str, text: str, detail: dict[str, Any]) -> None:
        found.setdefault(cid, {}).setdefault(code, []).append((text, detail))

    for p in positions.to_pylist():
        c = info.setdefault(p["customer_id"], {"advisor_id": p["advisor_id"], "value": 0,
                                               "funds": 0})
        c["value"] += p["value"] or 0
        c["funds"] += 1
        fund = f"{p['fund_code']} {p['name'] or ''}".strip()
        if p["drawdown"] is not None and p["drawdown"] >= rules.drawdown:
            add(p["customer_id"], "fund_drawdown", f"{fund} 净值较{rules.lookback_days}日高点回撤"
                f"{pct(p['drawdown'])}", {"fund_code": p["fund_code"],
                                          "drawdown": round(p["drawdown"], 4)})
        cost = float(p["cost"] or 0)
        if cost > 0 and float(p["value"] or 0) <= cost * (1 - rules.loss):
            ret = float(p["value"]) / cost - 1
            add(p["customer_id"], "recent_loss", f"{fund} 浮亏{pct(-ret)}",
                {"fund_code": p["fund_code"], "return": round(ret, 4)})
    spans = list(zip(waves["wave_start"].to_pylist(), waves["wave_end"].to_pylist(), strict=True))
    for r in redemptions.to_pylist():
        wave = next(((a, b) for a, b in spans if a <= r["txn_date"] <= b), None)
        if wave and r["customer_id"] in info:
            current = None if current_from is None else wave[1] >= current_from
            which = {True: "本轮", False: "往期", None: ""}[current]
            add(r["customer_id"], "resembles_redeemers",
                f"{r['txn_date']} 赎回 {r['fund_code']}（{which}赎回高峰 {wave[0]}～{wave[1]}）",
                {"fund_code": r["fund_code"], "redeem_date": str(r["txn_date"]),
                 "wave": [str(wave[0]), str(wave[1])], "current_wave": current})
    for t in (tags.to_pylist() if tags is not None else []):
        code = ("chat_signal" if t["tag_id"] in rules.chat_tags else
                "recent_loss" if t["tag_id"] in rules.loss_tags else None)
        if code and t["customer_id"] in info:
            add(t["customer_id"], code, f"标签「{names.get(t['tag_id'], t['tag_id'])}」",
                {"tag_id": t["tag_id"]})
    rows = []
    for cid, reasons in found.items():
        codes = [c for c in REASONS if c in reasons]
        items = [{"code": c, "points": rules.points.get(c, 0), "label": REASONS[c],
                  "evidence": [d for _, d in reasons[c]]} for c in codes]
        text = "；".join(f"{REASONS[c]}：{'、'.join(t for t, _ in reasons[c][:3])}"
                        + ("等" if len(reasons[c]) > 3 else "") for c in codes)
        rows.append({"customer_id": cid, "advisor_id": info[cid]["advisor_id"],
                     "score": sum(rules.points.get(c, 0) for c in codes), "reason_codes": ",".join(codes),
                     "evidence_count": sum(len(reasons[c]) for c in codes), "reasons": text,
                     "reasons_json": json.dumps(items, ensure_ascii=False, sort_keys=True),
                     "fund_value": info[cid]["value"], "funds_held": info[cid]["funds"]})
    rows.sort(key=lambda r: (-r["score"], -r["evidence_count"], -r["fund_value"],
                             r["customer_id"]))
    for i, r in enumerate(rows):
        r["rank"] = i + 1
    schema = pa.schema([("rank", pa.int64()), ("customer_id", pa.string()),
                        ("advisor_id", pa.string()), ("score", pa.int64()),
                        ("reason_codes", pa.string()), ("evidence_count", pa.int64()),
                        ("reasons", pa.string()), ("reasons_json", pa.string()),
                        ("fund_value", pa.decimal128(18, 2)), ("funds_held", pa.int64())])
    return pa.Table.from_pylist(rows, schema=schema)
