"""Exposure: a negative risk story → the tenant's customers holding the listed companies it
names, directly or through funds → one alert per (event, holder, security) and one advisor
task per alert.

    story (event_type set, polarity negative, companies linked)
        └─► holders (pipelines/risk_exposure): the latest positions snapshot, quantity > 0,
            and fund positions whose fund's latest disclosed top holdings name the security
              └─► per (customer, security): a repeat of an alerted event?  (the same story,
                  or the same security and event type within EVENT_WINDOW) → noted on that
                  alert, nothing new
                  else → risk_alerts row (every route, the keys of the evidence and of the
                         advisor's message, each stored once per tenant and content)
                       + risk_tasks row (open, assigned to the customer's advisor)

One alert per (customer, security, story) whatever the routes: a customer holding the stock
and two funds that hold it gets one alert whose ``routes_json`` lists the three routes and
whose ``value_at_risk`` is their sum; ``via`` names them (``position``, ``fund:<code>``,
joined with ``+``). ``quantity``, ``market_value``, ``cost`` and ``unrealised_pnl`` are the
direct position's — null when the customer is exposed only through funds; each fund route
carries the fund position's value, cost and P&L and the disclosed percentage of NAV.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from caifu.adapters.sor.repos import risk as repo
from caifu.adapters.sor.repos import scrm as scrm_repo
from caifu.adapters.sor.store import bulk_transaction
from caifu.core.errors import ConfigError, NotFoundError
from caifu.pipelines.risk_exposure import holders
from caifu.risk import alerts as rules
from caifu.services.compliance.privacy import restricted_ids
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.text.compliance import default_lexicon

VIA_MAX = 255  # risk_alerts.via


@dataclass
class ExposureReport:
    story_id: str
    event_type: str
    codes: list[str]
    snapshot_date: dt.date | None = None
    holders: int = 0  # (customer, security) pairs, whatever the routes
    fund_routes: int = 0  # (customer, security, fund) routes among them
    new_alerts: int = 0
    repeats: int = 0
    restricted: int = 0  # holders under "storage only" (a data-subject request): not alerted
    alert_ids: list[str] = field(default_factory=list)

    def plain(self) -> dict[str, Any]:
        return {"story_id": self.story_id, "event_type": self.event_type, "codes": self.codes,
                "snapshot_date": self.snapshot_date, "holders": self.holders,
                "fund_routes": self.fund_routes, "new_alerts": self.new_alerts,
                "repeats": self.repeats, "restricted": self.restricted,
                "alert_ids": self.alert_ids}


@dataclass
class Exposure:
    """One customer's exposure to one security: every route, the direct position first."""

    customer_id: str
    security_code: str
    routes: list[dict[str, Any]]

    @property
    def direct(self) -> dict[str, Any] | None:
        return next((r for r in self.routes if r["via"] == "position"), None)

    @property
    def value_at_risk(self) -> Decimal:
        return sum((r["value_at_risk"] for r in self.routes), Decimal("0.00"))

    @property
    def via(self) -> str:
        names = [r["via"] for r in self.routes]
        text, k = "+".join(names), len(names)
        while len(text) > VIA_MAX:  # the whole list is in routes_json
            k -= 1
            text = "+".join(names[:k]) + f"+{len(names) - k} more"
        return text


def group_routes(rows: list[dict[str, Any]]) -> list[Exposure]:
    """Rows of ``holders`` → one Exposure per (customer, security): the direct position
    first, then funds by value at risk (largest first) and code."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["customer_id"], r["security_code"]), []).append(r)
    out = []
    for (cid, code), routes in sorted(by.items()):
        routes.sort(key=lambda r: (r["via"] != "position", -r["value_at_risk"], r["via"]))
        out.append(Exposure(cid, code, routes))
    return out


def _route_plain(r: dict[str, Any], fund_names: dict[str, str]) -> dict[str, Any]:
    def text(v: Any) -> str | None:
        return None if v is None else str(v)

    out: dict[str, Any] = {"via": r["via"], "value_at_risk": text(r["value_at_risk"]),
                           "market_value": text(r["market_value"]), "cost": text(r["cost"]),
                           "unrealised_pnl": text(r["unrealised_pnl"]),
                           "as_of": r["snapshot_date"].isoformat()}
    if r["via"] == "position":
        out["quantity"] = text(r["quantity"])
    else:
        out.update(fund_code=r["fund_code"], fund_name=fund_names.get(r["fund_code"]),
                   shares=text(r["shares"]), report_date=r["report_date"].isoformat(),
                   nav_pct=text(r["nav_pct"]))
    return out


def _risk_story(c: Container, tenant: str, story_id: str) -> tuple[dict[str, Any],
                                                                  list[dict[str, Any]]]:
    with c.engine.connect() as conn:
        story = repo.story(conn, tenant, story_id)
        if story is None:
            raise NotFoundError(f"no story {story_id!r}")
        docs = repo.story_documents(conn, tenant, story_id)
    if story["event_type"] in (None, "", "none"):
        raise ConfigError(f"story {story_id} has no risk event (event_type "
                          f"{story['event_type'] or 'unset'}): classify it first "
                          "(caifu risk classify-story)")
    if story["polarity"] != "negative":
        raise ConfigError(f"story {story_id} is {story['polarity'] or 'of unset polarity'}: "
                          "only a negative story raises alerts")
    if story["companies_json"] is None:
        raise ConfigError(f"story {story_id} is not linked to companies yet (link it first)")
    return story, docs


def exposed(c: Container, tenant: str, codes: list[str], as_of: dt.date
            ) -> list[dict[str, Any]]:
    """Every route by which a customer holds one of ``codes`` on ``as_of``: the latest
    positions snapshot on or before it, and fund positions through the funds' latest
    disclosed top holdings (``pipelines/risk_exposure.holders``)."""
    table = exposed_table(c, tenant, codes, as_of)
    return [] if table is None else table.to_pylist()


def exposed_table(c: Container, tenant: str, codes: list[str], as_of: dt.date
                  ) -> pa.Table | None:
    """``exposed`` as an Arrow table (columns ``pipelines.risk_exposure.COLUMNS``); None when
    nothing can be held."""
    if not codes:
        return None
    con = ibis.duckdb.connect()
    try:
        positions = c.lake_table(con, tenant, "positions")
        fund_tx = c.lake_table(con, tenant, "fund_transactions")
        top = c.lake_table(con, tenant, "fund_top_holdings")
        expr = holders(positions, codes, as_of, fund_tx, top)
        if expr is None:
            return None
        return con.to_pyarrow(expr)
    finally:
        con.disconnect()


def _json_text(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Decimals or dates as ``json.dumps(str(v))`` / ``json.dumps(v.isoformat())`` write
    them (``"3492.47"``, ``"2026-12-07"``: nothing to escape), ``null`` for a null."""
    quoted = pc.binary_join_element_wise('"', pc.cast(col, pa.string()), '"', "")
    return pc.fill_null(quoted, "null")


def _json_strings(col: pa.ChunkedArray, name: Any = None) -> pa.Array:
    """Each value (or ``name(value)``) as ``json.dumps`` writes it, escapes and all; a
    column has a handful of distinct values (``position``, a few funds)."""
    enc = pc.dictionary_encode(col.combine_chunks())
    values = [json.dumps(name(v) if name else v, ensure_ascii=False)
              for v in enc.dictionary.to_pylist()]
    return pc.take(pa.array(values, pa.string()), enc.indices)


def _routes_json(t: pa.Table, fund_names: dict[str, str]) -> pa.ChunkedArray:
    """Each row's element of ``routes_json``: ``json.dumps(_route_plain(row, fund_names),
    ensure_ascii=False)`` to the byte, built column-wise by Arrow."""
    def j(*parts: Any) -> Any:
        return pc.binary_join_element_wise(*parts, "")

    text = {c: _json_text(t.column(c)) for c in (
        "value_at_risk", "market_value", "cost", "unrealised_pnl", "snapshot_date",
        "quantity", "shares", "report_date", "nav_pct")}
    head = j('{"via": ', _json_strings(t.column("via")),
             ', "value_at_risk": ', text["value_at_risk"],
             ', "market_value": ', text["market_value"], ', "cost": ', text["cost"],
             ', "unrealised_pnl": ', text["unrealised_pnl"], ', "as_of": ', text["snapshot_date"])
    position = j(head, ', "quantity": ', text["quantity"], "}")
    fund = j(head, ', "fund_code": ', _json_strings(t.column("fund_code")),
             ', "fund_name": ', _json_strings(t.column("fund_code"), fund_names.get),
             ', "shares": ', text["shares"], ', "report_date": ', text["report_date"],
             ', "nav_pct": ', text["nav_pct"], "}")
    return pc.if_else(pc.equal(t.column("via"), "position"), position, fund)


class _Held:
    """The holder query's rows as one entry per (customer, security), column-wise — what
    ``group_routes`` gives as ``Exposure`` objects, without a dict or an object per row (a
    story about a widely held stock has 100k+ holders). Entries are ordered by customer and
    security; each entry's routes are the direct position first, then funds by value at risk
    (largest first) and code. Per entry: ``customer_id``, ``security_code``, ``direct``
    (held directly), ``via`` (``Exposure.via``), ``value_at_risk`` (the routes' sum),
    ``routes_json`` (``json.dumps`` of each route's ``_route_plain``, as a JSON list),
    ``funds`` (the fund routes' codes, in order), ``snapshot_date`` (the first route's) and
    the direct position's ``quantity``, ``market_value``, ``cost`` and ``unrealised_pnl``
    (None when held only through funds). Only entries with more than one route (a customer
    holding the stock and funds that hold it) are put together in Python."""

    def __init__(self, table: pa.Table, fund_names: dict[str, str]) -> None:
        t = table.append_column("fund_route", pc.not_equal(table.column("via"), "position"))
        t = t.sort_by([("customer_id", "ascending"), ("security_code", "ascending"),
                       ("fund_route", "ascending"), ("value_at_risk", "descending"),
                       ("via", "ascending")]).combine_chunks()
        n = t.num_rows
        cid, code = t.column("customer_id"), t.column("security_code")
        starts = np.zeros(min(n, 1), dtype=np.int64)
        if n > 1:
            change = pc.or_(pc.not_equal(cid.slice(1), cid.slice(0, n - 1)),
                            pc.not_equal(code.slice(1), code.slice(0, n - 1)))
            starts = np.concatenate([starts, np.flatnonzero(
                change.to_numpy(zero_copy_only=False)) + 1])
        sizes = np.diff(np.append(starts, n))
        first = pa.array(starts)
        json_text = _routes_json(t, fund_names)

        def at_first(col: Any) -> Any:
            return pc.take(col, first)

        direct = pc.equal(at_first(t.column("via")), "position")

        def direct_only(name: str) -> pa.Array:
            col = at_first(t.column(name))
            return pc.if_else(direct, col, pa.scalar(None, col.type))

        self.n = len(starts)
        self.customer_id: list[str] = at_first(cid).to_pylist()
        self.security_code: list[str] = at_first(code).to_pylist()
        self.direct: list[bool] = direct.to_pylist()
        # Arrow arrays: what is written as it is (a Python object per value costs)
        self.snapshot_date: pa.Array = at_first(t.column("snapshot_date"))
        self.quantity: pa.Array = direct_only("quantity")
        self.market_value: pa.Array = direct_only("market_value")
        self.cost: pa.Array = direct_only("cost")
        self.unrealised_pnl: pa.Array = direct_only("unrealised_pnl")
        var = t.column("value_at_risk")
        self.value_at_risk: pa.Array = at_first(var)
        self.via: list[str] = at_first(t.column("via")).to_pylist()
        self.routes_json: list[str] = pc.binary_join_element_wise(
            "[", at_first(json_text), "]", "").to_pylist()
        first_fund = at_first(t.column("fund_code")).to_pylist()
        self.funds: list[tuple[str, ...]] = [() if f is None else (f,) for f in first_fund]
        several = np.flatnonzero(sizes > 1)
        if not len(several):
            return
        # the value at risk of every route, summed per holder (exact: decimals)
        group = np.repeat(np.arange(self.n), sizes)
        sums = pa.table({"g": group, "v": var}).group_by("g", use_threads=False).aggregate(
            [("v", "sum")]).sort_by("g").column("v_sum")
        self.value_at_risk = pc.cast(sums, var.type).combine_chunks()
        for j in several.tolist():  # several routes: put together here
            rows = slice(int(starts[j]), int(starts[j] + sizes[j]))
            vias = t.column("via")[rows].to_pylist()
            self.via[j] = Exposure("", "", [{"via": v} for v in vias]).via
            self.routes_json[j] = "[" + ", ".join(json_text[rows].to_pylist()) + "]"
            funds = t.column("fund_code")[rows].to_pylist()
            self.funds[j] = tuple(funds[1:] if self.direct[j] else funds)


def raise_alerts(c: Container, tenant: str, story_id: str) -> ExposureReport:
    """Alerts and tasks for every holder of the story's listed companies (idempotent)."""
    get_tenant(c, tenant)
    story, docs = _risk_story(c, tenant, story_id)
    mentions: dict[str, dict[str, Any]] = {}
    for m in json.loads(story["companies_json"]):
        if m["listed"] and m["code"]:
            mentions.setdefault(m["code"], m)  # the first mention is the evidence
    report = ExposureReport(story_id, story["event_type"], sorted(mentions))
    now = c.clock.now()
    table = exposed_table(c, tenant, report.codes, now.date())
    if table is None or table.num_rows == 0:
        return report
    vias = table.column("via")
    direct_rows = table.filter(pc.equal(vias, "position"))
    report.fund_routes = table.num_rows - direct_rows.num_rows
    if direct_rows.num_rows:
        report.snapshot_date = pc.max(direct_rows.column("snapshot_date")).as_py()
    sources = [{"site": d["site"], "url": d["url"], "published_at": d["published_at"]
                .isoformat() + "Z", "title": d["title"]} for d in docs]
    event_at = story["first_published_at"]
    event_type = story["event_type"]
    lexicon = default_lexicon()
    evidence = {code: json.dumps({"mention": m, "sources": sources}, ensure_ascii=False)
                for code, m in mentions.items()}
    evidence_key = {code: repo.text_key(text) for code, text in evidence.items()}
    with c.lock(tenant, "risk-alerts"), bulk_transaction(c.engine) as conn:
        fund_codes = pc.unique(table.column("fund_code").drop_null()).to_pylist()
        fund_names = repo.fund_names(conn, tenant, sorted(fund_codes))
        held = _Held(table, fund_names)
        report.holders = held.n
        # a customer under "storage only" is hidden from all but compliance: his records stay,
        # nobody is asked to contact him about them
        hidden = restricted_ids(c, tenant)
        cids, codes = held.customer_id, held.security_code
        keep = range(held.n)
        if hidden:
            keep = [j for j in keep if cids[j] not in hidden]  # type: ignore[assignment]
            report.restricted = held.n - len(keep)
        ids = sorted({cids[j] for j in keep})
        seen = repo.alerted_events(conn, tenant, story_id, report.codes, event_type,
                                   event_at - rules.EVENT_WINDOW, event_at + rules.EVENT_WINDOW)
        repeats = [seen[(cids[j], codes[j])] for j in keep if (cids[j], codes[j]) in seen]
        new = [j for j in keep if (cids[j], codes[j]) not in seen] if seen else list(keep)
        masters = {m.customer_id: m for m in scrm_repo.marketing_masters(conn, tenant, ids)}
        levels = scrm_repo.latest_assessments(conn, tenant, ids)
        n = len(new)
        new_cids = [cids[j] for j in new]
        new_codes = [codes[j] for j in new]
        master_of = [masters.get(cid) for cid in new_cids]
        advisors = [None if m is None else m.advisor_id for m in master_of]
        consents = [None if m is None else m.marketing_consent for m in master_of]
        levels_ = [None if cid not in levels else levels[cid].risk_level for cid in new_cids]
        # holders of one story share a handful of drafts (code, level, consent, held
        # directly, funds): each distinct one is written and checked once
        fund_label = {code: f"{fund_names.get(code, '')}（{code}）" for code in fund_codes}
        wkeys = list(zip(new_codes, levels_, consents, [held.direct[j] for j in new],
                         [held.funds[j] for j in new], strict=True))
        drafts: dict[tuple[Any, ...], str] = {}  # wording → message_hash
        messages: dict[str, tuple[str, bool, str]] = {}
        checked: dict[str, tuple[str, ...]] = {}
        for code, level, consent, direct, funds in dict.fromkeys(wkeys):
            m = mentions[code]
            words = {"company": m["name"], "code": m["code"], "event_type": event_type,
                     "title": story["title"], "published": event_at.date(),
                     "site_count": story["site_count"], "customer_level": level,
                     "consent": consent, "direct": direct,
                     "funds": tuple(fund_label[f] for f in funds)}
            draft = rules.warning(**words)
            if draft.text not in checked:
                found = lexicon.check_content(draft.text, footer_required=False).findings
                checked[draft.text] = tuple(dict.fromkeys(
                    f.matched for f in found if f.action == "review"))
            if checked[draft.text]:
                draft = rules.warning(**words, prohibited=checked[draft.text])
            text = (draft.text, draft.may_send, "\n".join(draft.notes))
            drafts[(code, level, consent, direct, funds)] = message = repo.text_key(*text)
            messages[message] = text
        aids = [rules.alert_id(story_id, cid, code)
                for cid, code in zip(new_cids, new_codes, strict=True)]
        report.alert_ids = aids
        names = {code: m["name"][:200] for code, m in mentions.items()}
        # the primary key's order: B-tree pages fill in turn
        order = sorted(range(n), key=aids.__getitem__)

        rows = pa.array([new[i] for i in order], pa.int64())

        def col(values: Sequence[Any], at: Sequence[int] | None = None) -> list[Any]:
            return [values[i] for i in order] if at is None else [values[at[i]] for i in order]

        def arrow(values: pa.Array) -> pa.Array:
            return values.take(rows)

        if n:
            (aids_, cids_, codes_, advisors_, levels__) = (col(aids), col(new_cids),
                                                        col(new_codes), col(advisors),
                                                        col(levels_))
            tids = [rules.task_id(a) for a in aids_]
            alerts: dict[str, Sequence[Any]] = {
                "alert_id": aids_, "story_id": [story_id] * n, "security_code": codes_,
                "company_name": [names[code] for code in codes_],
                "event_type": [event_type] * n, "event_at": [event_at] * n,
                "customer_id": cids_, "advisor_id": advisors_, "via": col(held.via, new),
                "snapshot_date": arrow(held.snapshot_date),
                "quantity": arrow(held.quantity),
                "market_value": arrow(held.market_value), "cost": arrow(held.cost),
                "unrealised_pnl": arrow(held.unrealised_pnl),
                "value_at_risk": arrow(held.value_at_risk),
                "routes_json": col(held.routes_json, new), "customer_risk_level": levels__,
                "evidence_hash": [evidence_key[code] for code in codes_],
                "message_hash": [drafts[k] for k in col(wkeys)],
                "repeat_story_ids_json": ["[]"] * n, "created_at": [now] * n}
            tasks: dict[str, Sequence[Any]] = {
                "task_id": tids, "alert_id": aids_, "customer_id": cids_,
                "advisor_id": advisors_, "status": ["open"] * n, "reason": [None] * n,
                "created_at": [now] * n, "updated_at": [now] * n, "updated_by": ["system"] * n}
            events: dict[str, Sequence[Any]] = {
                "task_id": tids, "seq": [1] * n, "from_status": [None] * n,
                "to_status": ["open"] * n, "actor": ["system"] * n, "at": [now] * n,
                "reason": [f"story {story_id}"] * n}
            repo.add_alerts(conn, tenant, alerts, tasks, events,
                            {evidence_key[code]: evidence[code] for code in set(codes_)},
                            messages)  # every wording drafted is some new alert's
        repo.add_repeat(conn, tenant, sorted(set(repeats)), story_id)
    report.new_alerts, report.repeats = n, len(repeats)
    return report
