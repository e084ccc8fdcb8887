"""Recommendations where advisors act: every customer's list published, one customer's served.

``publish`` ranks every customer with a fitted policy (``services/recommend/policy``), k
items and some spares each, with the reasons (``recommend/reasons``), re-checks every pair
with ``core.suitability.judge`` (a disagreement with the mask stops the publish), and replaces
the tenant's ``recommendation_lists`` in one transaction — the sidebar reads the old lists or
the new, never a mix.

``for_customer`` serves one list: it reads the row by primary key and judges every item
*again*, because the facts move after publishing — an assessment made this morning counts
now (the newest assessment, as the sidebar reads it), consent can be withdrawn, research
expires, a product is re-rated or withdrawn. A refused item is counted by rule (and in the
``caifu_recommend_recheck_refused_total`` counter, ``services/platform/telemetry``); the
spares fill its place, so the answer has exactly k items whenever k remain. Items the advisor
sent within the resend window or dismissed are withheld, and a customer at the frequency cap
gets none — from the log, not counted as re-check refusals. What is shown is logged
(``recommendation_log``) with its rank, score, policy version and propensity.

Propensity: the served list follows ``recommend/explore`` over the passing items — the
published order is the deterministic list, the passing items its customer's eligible set (the
re-check is the mask, so the explored slot never leaves it). With the tenant's
``explore.epsilon`` at 0 (the default) that is the first k that pass, each with probability
1.0; above 0 the last slot explores, drawn by ``audit_draws(seed, customer, day)`` — the same
customer on the same day gets the same list, a preview included. Each logged row carries its
inclusion probability, the list's id and rate and whether it explored; the last slot's row the
pool it was drawn from (``choose``), so ``services/recommend/offpolicy`` knows the
probability of every passing item, shown or not.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from caifu.adapters.sor.repos import recommend as repo
from caifu.adapters.sor.repos import scrm as scrm_repo
from caifu.adapters.sor.store import bulk_transaction
from caifu.core.errors import ConfigError, NotFoundError
from caifu.core.identity import Principal
from caifu.core.suitability import Verdict, judge
from caifu.core.suitability import investor_of as investor
from caifu.recommend import config as rconfig
from caifu.recommend.catalogue import EPOCH, ITEM_TYPES, NEVER, Catalogue
from caifu.recommend.eligibility import recheck
from caifu.recommend.explore import audit_draws, explore
from caifu.recommend.reasons import KIND_NAMES, explain
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.platform import access
from caifu.services.scrm import sidebar

if TYPE_CHECKING:  # the policy's rankers load LightGBM: the sidebar and the API do without
    from caifu.services.recommend.policy import Fitted

SURFACES = ("sidebar", "api", "campaign", "group")
BLOCK = 2000  # customers ranked at a time by a publish
REFUSED = "caifu_recommend_recheck_refused_total"
CAP_DAYS = 7  # the frequency cap's window (``caps.per_customer_per_7_days``)
ACTION_LABEL, FUND_LABEL = "服务", "基金"


@dataclass(frozen=True)
class Choice:
    """Which of the passing items a list shows (positions in the published order, slot by
    slot) and with what probability each is shown at all."""

    positions: list[int]
    propensities: list[float]
    explored: bool  # the last slot came from the exploration draw
    pool: list[int]  # what the last slot could have held, the deterministic one first


def choose(passing: int, k: int, eps: float, draws: np.ndarray) -> Choice:
    """``explore.explore`` over ``passing`` items ranked in the published order (all of them
    eligible: they passed the re-check), with the customer's two ``draws`` (shape (2,) or
    (1, 2), from ``explore.audit_draws``). ``eps`` = 0 gives the first k, each with 1.0."""
    n = min(passing, k)
    lists = np.full((1, k), -1, np.int64)
    lists[0, :n] = np.arange(n)
    shown = explore(lists, np.ones((1, passing), bool), eps, np.reshape(draws, (1, 2)))
    slots = shown.items[0]
    keep = slots >= 0
    pool = list(range(k - 1, passing)) if passing >= k else []
    return Choice([int(x) for x in slots[keep]], [float(x) for x in shown.propensity[0][keep]],
                  bool(shown.explored[0]), pool)


# --- publishing ------------------------------------------------------------------------------

@dataclass
class Published:
    tenant: str
    as_of: dt.date
    policy_version: str
    k: int
    spares: int
    customers: int  # lists written
    items: int  # items over all lists
    short: int  # lists with fewer than k items (fewer than k eligible)
    empty: int  # customers with no eligible item
    skipped_restricted: int
    seconds: float


def _iso(day: int) -> str | None:
    return None if day >= NEVER else (EPOCH + dt.timedelta(days=day)).isoformat()


def item_fragments(cat: Catalogue) -> list[str]:
    """Each catalogue item's fixed part of its JSON object (without the closing brace): what
    suitability judges again at read time. Built once: a publish writes millions of items."""
    out = []
    for i in range(len(cat)):
        fixed = {"item_id": str(cat.item_id[i]), "item_type": ITEM_TYPES[int(cat.item_type[i])],
                 "risk_level": cat.level(i), "horizon": cat.horizon_name(i),
                 "variety": cat.variety_name(i), "valid_from": _iso(int(cat.valid_from[i])),
                 "valid_until": _iso(int(cat.valid_until[i]))}
        out.append(json.dumps(fixed, ensure_ascii=False)[:-1])
    return out


def _lists_json(fragments: list[str], lists: np.ndarray, scores: np.ndarray,
                reasons: np.ndarray) -> list[str]:
    """One JSON array per row of ``lists`` (item rows, -1 = none), best first."""
    reason_json: dict[str, str] = {}
    out = []
    j = 0
    for row, srow in zip(lists.tolist(), scores.tolist(), strict=True):
        parts = []
        for item, score in zip(row, srow, strict=True):
            if item < 0:
                continue
            text = str(reasons[j])
            j += 1
            quoted = reason_json.get(text)
            if quoted is None:
                quoted = reason_json[text] = json.dumps(text, ensure_ascii=False)
            value = "null" if score != score else repr(round(score, 6))  # NaN: no score
            parts.append(f'{fragments[item]}, "score": {value}, "reason": {quoted}}}')
        out.append("[" + ", ".join(parts) + "]")
    return out


def fit_newest(c: Container, tenant: str, *, engine: str = "duckdb",
               progress: Callable[[str], None] = lambda _m: None) -> Fitted:
    """The tenant's policy fitted as of the newest day of its interaction log (what
    ``caifu recommend publish`` lists from). ConfigError for a tenant without one."""
    from caifu.services.recommend import inputs as rin
    from caifu.services.recommend import policy

    config, _ = rin.load_config(c, tenant)  # a mistake in it is reported before any work
    progress("reading the catalogue and the interaction log")
    data = rin.read(c, tenant, config)
    if not len(data.interactions):
        raise ConfigError(f"tenant {tenant!r} has no interactions with catalogue items: "
                          "nothing to rank from")
    newest = EPOCH + dt.timedelta(days=int(data.interactions.day.max()))
    return policy.fit(c, tenant, newest, engine=engine, data=data, progress=progress)


def publish(c: Container, fitted: Fitted, k: int = 10, spares: int = 10, *,
            progress: Callable[[int, int], None] = lambda _done, _total: None) -> Published:
    """Every customer's list (k + ``spares`` items, best first, with reasons) as of the
    policy's day, replacing the tenant's published lists in one transaction. Storage-only
    customers get none. Raises ConfigError, publishing nothing, if the re-check by
    ``judge`` refuses any pair the mask let through."""
    from caifu.services.compliance.privacy import restricted_ids

    if k < 1 or spares < 0:
        raise ConfigError(f"k must be ≥ 1 and spares ≥ 0 (got k={k}, spares={spares})")
    t0 = time.perf_counter()
    tenant, cat, n = fitted.tenant, fitted.data.cat, k + spares
    restricted = restricted_ids(c, tenant)
    keep = np.array([cid not in restricted for cid in fitted.ids], bool)
    fragments = item_fragments(cat)
    generated = c.clock.now()
    total = len(fitted.ids)
    result = Published(tenant, fitted.day, fitted.version, k, spares, 0, 0, 0, 0,
                       int((~keep).sum()), 0.0)
    with c.scratch(f"recommend-publish-{tenant}") as scratch:
        staged = scratch / "lists.jsonl"
        with staged.open("w", encoding="utf-8") as out:
            for start in range(0, total, BLOCK):
                rows = np.flatnonzero(keep[start:start + BLOCK]) + start
                if len(rows):
                    _stage_block(fitted, rows, n, k, fragments, out, result)
                progress(min(start + BLOCK, total), total)
        with bulk_transaction(c.engine) as conn:
            _write_staged(conn, tenant, staged, fitted, k, generated)
    result.seconds = time.perf_counter() - t0
    return result


def _stage_block(fitted: Fitted, rows: np.ndarray, n: int, k: int, fragments: list[str],
                 out: Any, result: Published) -> None:
    lists, scores = fitted.lists(rows, n)
    chosen = lists >= 0
    pair_rows = np.repeat(rows, n)[chosen.ravel()]
    pair_items = lists[chosen]
    check = recheck(fitted.elig.cust, fitted.data.cat, fitted.day, pair_rows, pair_items)
    if check.violations:
        raise ConfigError(f"the suitability re-check refused {check.violations} of "
                          f"{check.checked} published pairs (the mask and judge disagree); "
                          f"nothing was published. First: {check.examples[:3]}")
    reasons = explain(fitted.ctx, pair_rows, pair_items)
    counts = chosen.sum(axis=1)
    for cid, text in zip([fitted.ids[r] for r in rows.tolist()],
                         _lists_json(fragments, lists, scores, reasons), strict=True):
        out.write(json.dumps([cid, text], ensure_ascii=False) + "\n")
    result.customers += len(rows)
    result.items += int(counts.sum())
    result.short += int((counts < k).sum())
    result.empty += int((counts == 0).sum())


def _write_staged(conn: Any, tenant: str, staged: Path, fitted: Fitted, k: int,
                  generated: dt.datetime, chunk: int = 50_000) -> None:
    """The tenant's lists replaced by the staged ones, a chunk of rows at a time, in the
    caller's transaction."""
    repo.delete_lists(conn, tenant)
    with staged.open(encoding="utf-8") as lines:
        while batch := [json.loads(line) for _, line in zip(range(chunk), lines, strict=False)]:
            n = len(batch)
            repo.insert_lists(conn, tenant, {
                "customer_id": [b[0] for b in batch], "as_of": [fitted.day] * n,
                "policy_version": [fitted.version] * n, "generated_at": [generated] * n,
                "k": [k] * n, "items_json": [b[1] for b in batch]})


# --- serving one customer --------------------------------------------------------------------

@dataclass(frozen=True)
class Offer:
    """An item as it stands now, in the shape ``sidebar.send_text`` reads."""

    content_type: str  # a content type, or "fund" / "action"
    title: str
    url: str | None
    risk_level: str
    label: str  # what kind of item, in words


@dataclass
class Served:
    """One customer's recommendations as shown (``items``) and what was held back."""

    customer_id: str
    k: int
    published: bool
    as_of: dt.date | None = None
    policy_version: str | None = None
    generated_at: dt.datetime | None = None
    investor_level: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)  # the re-check's refusals by rule
    withheld: dict[str, int] = field(default_factory=dict)  # sent, dismissed, capped (log)
    blocked: str | None = None  # why nothing may be recommended to him at all
    notes: list[str] = field(default_factory=list)
    explored: bool = False  # the last slot came from the exploration draw

    def as_dict(self) -> dict[str, Any]:
        return {"customer_id": self.customer_id, "k": self.k, "published": self.published,
                "as_of": self.as_of, "policy_version": self.policy_version,
                "generated_at": self.generated_at, "investor_level": self.investor_level,
                "items": self.items, "refused": self.refused, "withheld": self.withheld,
                "blocked": self.blocked, "notes": self.notes}


@lru_cache(maxsize=32)
def _config(root: Path, tenant: str, stamp: int) -> rconfig.RecommendConfig:
    """The tenant's configuration, parsed once per version of its file (``stamp``)."""
    import yaml

    path = root / "recommend" / f"{tenant}.yaml"
    if not stamp:
        return rconfig.default()
    return rconfig.parse(yaml.safe_load(path.read_text("utf-8")), str(path))


def tenant_config(c: Container, tenant: str) -> rconfig.RecommendConfig:
    path = c.root / "recommend" / f"{tenant}.yaml"
    return _config(c.root, tenant, path.stat().st_mtime_ns if path.exists() else 0)


def _offers(conn: Any, tenant: str, items: list[dict[str, Any]],
            config: rconfig.RecommendConfig) -> list[Offer | None]:
    """Each listed item as stored now (None: withdrawn from the catalogue): the current
    R-level of a content item or fund, the configured one of an action."""
    by_type: dict[str, list[str]] = {t: [] for t in ITEM_TYPES}
    for it in items:
        by_type[it["item_type"]].append(it["item_id"])
    contents = repo.content_rows(conn, tenant, by_type["content"])
    funds = repo.fund_rows(conn, tenant, [i[1:] for i in by_type["fund"]])
    out: list[Offer | None] = []
    for it in items:
        iid, kind = it["item_id"], it["item_type"]
        if kind == "content" and (r := contents.get(iid)) is not None:
            out.append(Offer(r.content_type, r.title, r.url, r.risk_level,
                             sidebar.CONTENT_TYPES.get(r.content_type, r.content_type)))
        elif kind == "fund" and (f := funds.get(iid[1:])) is not None:
            out.append(Offer("fund", f.name, None, f.risk_level,
                             KIND_NAMES.get(f.fund_type, FUND_LABEL)))
        elif kind == "action" and (a := config.actions.get(iid.removeprefix("A:"))) is not None:
            out.append(Offer("action", a.title, None, a.risk_level, ACTION_LABEL))
        else:
            out.append(None)
    return out


def _valid(item: dict[str, Any], today: dt.date) -> bool:
    start, stop = item.get("valid_from"), item.get("valid_until")
    return ((start is None or dt.date.fromisoformat(start) <= today)
            and (stop is None or today <= dt.date.fromisoformat(stop)))


def _refusal(item: dict[str, Any], offer: Offer | None, verdict: Verdict | None,
             consent: bool, today: dt.date) -> str | None:
    """The re-check's first refusing rule, in the mask's order, or None."""
    if offer is None:
        return "NOT_VALID"  # withdrawn since publishing
    assert verdict is not None
    if not verdict.may_recommend:
        return verdict.rule
    if not consent:
        return "NO_CONSENT"
    return None if _valid(item, today) else "NOT_VALID"


def _withheld(item_id: str, recent: list[Any], since: dt.datetime, capped: bool) -> str | None:
    if capped:
        return "FREQUENCY_CAP"
    for r in recent:
        if r.item_id == item_id and r.dismissed_at is not None and r.dismissed_at >= since:
            return "DISMISSED"
        if r.item_id == item_id and r.sent_at is not None and r.sent_at >= since:
            return "RECENTLY_SENT"
    return None


def for_customer(c: Container, p: Principal, customer_id: str, k: int = 10,
                 surface: str = "api", *, advisor: dict[str, Any] | None = None,
                 link_base: str | None = None, record: bool = True) -> Served:
    """The customer's published list judged again now, k of those that pass as the tenant's
    exploration draws them (the first k when it does not explore), logged (with
    ``record``: the log rows and the re-check counter; a preview passes False). ``advisor``
    signs the send texts (default: the principal's advisor, else the customer's); with
    ``link_base`` a content item's text carries a tracking link ``<link_base>/t/<token>``
    instead of its URL. NotFoundError for a customer outside ``p``'s scope."""
    if surface not in SURFACES:
        raise ConfigError(f"unknown surface {surface!r}; one of {', '.join(SURFACES)}")
    tenant = access.tenant_of(p)
    now = c.clock.now()
    config = tenant_config(c, tenant)
    resend = now - dt.timedelta(days=config.caps.resend_after_days)
    capped_since = now - dt.timedelta(days=CAP_DAYS)
    # one connection for every read: the scope check, master data and the tenant's time zone
    # are one query (the sidebar's latency is mostly round trips: bench/recommend_serving.py)
    with c.engine.connect() as conn:
        master = repo.customer_row(conn, access.scope_of(p), customer_id)
        if master is None:
            raise NotFoundError(f"no customer {customer_id!r}")
        today = now.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(master.timezone)).date()
        row = repo.list_of(conn, tenant, customer_id)
        assessed = scrm_repo.latest_assessments(conn, tenant, [customer_id]).get(customer_id)
        inv = investor(assessed, bool(master.professional))
        served = Served(customer_id, k, row is not None, investor_level=inv.level)
        if row is None:
            served.notes.append(f"no recommendation list published for tenant {tenant!r} yet: "
                                f"run `caifu recommend publish -t {tenant}`"
                                if not repo.has_lists(conn, tenant) else
                                "no list for this customer in the last publish")
            return served
        items = json.loads(row.items_json)
        offers = _offers(conn, tenant, items, config)
        recent = repo.recent_actions(conn, tenant, customer_id, min(resend, capped_since))
        who = advisor if advisor is not None else _advisor(conn, tenant, p, master)
    served.as_of, served.policy_version, served.generated_at = (
        row.as_of, row.policy_version, row.generated_at)
    consent = master.marketing_consent is not False
    capped = sum(1 for r in recent if r.sent_at is not None and r.sent_at >= capped_since) \
        >= config.caps.per_customer_per_7_days
    passing: list[tuple[dict[str, Any], Offer, Verdict]] = []
    for item, offer in zip(items, offers, strict=True):
        verdict = None if offer is None else judge(
            inv, offer.risk_level, today, horizon=item.get("horizon"), variety=item.get("variety"))
        rule = _refusal(item, offer, verdict, consent, today)
        if rule is not None:
            served.refused[rule] = served.refused.get(rule, 0) + 1
            if rule in ("NO_ASSESSMENT", "ASSESSMENT_EXPIRED", "LOWEST_CATEGORY") and verdict:
                served.blocked = served.blocked or verdict.reasons[0]
            continue
        held = _withheld(item["item_id"], recent, resend, capped)
        if held is not None:
            served.withheld[held] = served.withheld.get(held, 0) + 1
            continue
        assert offer is not None and verdict is not None
        passing.append((item, offer, verdict))
    choice = choose(len(passing), k, config.explore.epsilon,
                    audit_draws(config.explore.seed, [customer_id], (today - EPOCH).days))
    served.explored = choice.explored
    list_id = uuid.uuid4().hex
    pool = json.dumps([passing[i][0]["item_id"] for i in choice.pool], ensure_ascii=False) \
        if choice.pool else None
    logged = []
    for rank, (pos, propensity) in enumerate(
            zip(choice.positions, choice.propensities, strict=True), 1):
        item, offer, verdict = passing[pos]
        rec_id = uuid.uuid4().hex
        token = secrets.token_urlsafe(16) if offer.url and link_base and record else None
        url = f"{link_base.rstrip('/')}/t/{token}" if token and link_base else offer.url
        served.items.append(_shown(rec_id, rank, item, offer, verdict, propensity,
                                   sidebar.send_text(_with_url(offer, url), who or {})))
        logged.append({"rec_id": rec_id, "customer_id": customer_id,
                       "item_id": item["item_id"], "item_type": item["item_type"],
                       "surface": surface, "rank": rank, "score": item.get("score"),
                       "propensity": propensity, "policy_version": row.policy_version,
                       "shown_at": now, "shown_by": p.subject, "tracking_token": token,
                       "list_id": list_id, "explored": choice.explored,
                       "epsilon": config.explore.epsilon,
                       "explore_pool": pool if rank == k else None})
    if record:
        _record(c, tenant, surface, served.refused, logged)
    return served


def _with_url(offer: Offer, url: str | None) -> Offer:
    return Offer(offer.content_type, offer.title, url, offer.risk_level, offer.label)


def _shown(rec_id: str, rank: int, item: dict[str, Any], offer: Offer, verdict: Verdict,
           propensity: float, text: str) -> dict[str, Any]:
    return {"rec_id": rec_id, "rank": rank, "item_id": item["item_id"],
            "item_type": item["item_type"], "type": offer.label, "title": offer.title,
            "risk_level": offer.risk_level, "score": item.get("score"),
            "reason": item.get("reason"), "propensity": propensity,
            "verdict": verdict.outcome, "rule": verdict.rule,
            "rule_version": verdict.rule_version, "suitability": verdict.reasons[0],
            "text": text}


def _advisor(conn: Any, tenant: str, p: Principal, master: Any) -> dict[str, Any] | None:
    """Who signs the send texts: the calling advisor, else the customer's own."""
    advisor_id = p.advisor_id or (master.advisor_id if master is not None else None)
    row = scrm_repo.advisor(conn, tenant, advisor_id) if advisor_id else None
    return None if row is None else dict(row._mapping)


def _record(c: Container, tenant: str, surface: str, refused: dict[str, int],
            logged: list[dict[str, Any]]) -> None:
    for rule, n in refused.items():
        c.counters.inc(REFUSED, n, tenant=tenant, surface=surface, rule=rule)
    with c.engine.begin() as conn:
        repo.add_shown(conn, tenant, logged)


def for_api(c: Container, p: Principal, customer_id: str, k: int, link_base: str | None
            ) -> Served:
    """``GET /v1/customers/{id}/recommendations``: the scope check, then the audit record
    (``recommend_view``) before anything of the customer is read, then ``for_customer``."""
    tenant = access.tenant_of(p)
    if not access.visible(c, p, customer_id):
        raise NotFoundError(f"no customer {customer_id!r}")
    audit.append(c, tenant, p.subject, "recommend_view", customer_ids=[customer_id],
                 reason=f"推荐接口：读取客户推荐清单（前 {k} 条）")
    return for_customer(c, p, customer_id, k, "api", link_base=link_base)


__all__ = ["Choice", "Offer", "Published", "Served", "choose", "fit_newest",
           "for_api", "for_customer", "investor", "publish"]


@dataclass(frozen=True)
class Audience:
    """The customers whose published list has an item within its first k places."""

    item_id: str
    k: int
    customer_ids: list[str]
    policy_versions: list[str]
    as_of: list[str]


def audience(c: Container, tenant: str, item_id: str, k: int) -> Audience:
    """Who would be offered ``item_id`` among his top ``k`` (of the published lists) — a
    campaign's "this item ranks in the customer's top k" target. The campaign gate then judges
    each of them again, as it does every target."""
    if not 1 <= k <= 100:
        raise ValueError("k: between 1 and 100")
    with c.engine.connect() as conn:
        rows = repo.lists_naming(conn, tenant, item_id)
    ids: list[str] = []
    versions: set[str] = set()
    days: set[str] = set()
    for row in rows:
        items = json.loads(row.items_json)[:k]
        if any(i.get("item_id") == item_id for i in items):
            ids.append(str(row.customer_id))
            versions.add(str(row.policy_version))
            days.add(str(row.as_of))
    return Audience(item_id, k, ids, sorted(versions), sorted(days))
