"""Off-policy evaluation over the real recommendation log: how many clicks (or conversions)
per list another policy would have had, judged from what the served, exploring policy
showed (``recommend/ope`` for the estimators, ``recommend/explore`` for the policy).

**The logging policy, row by row.** Each list served (one ``list_id``) has its shown rows
with their inclusion probability μ, and on the last slot's row the pool that slot was drawn
from (the deterministic item first) and the rate ε — so an item of the pool that was *not*
shown has μ = ε/c (the deterministic one (1 − ε) + ε/c), and any other item μ = 0. Rows from
before migration 0015 have no pool: their unshown items count as μ = 0 (unsupported), and
their rows are grouped into lists by (customer, surface, time shown).

**Campaign sends are left out** (surface ``campaign``, ``services/recommend/campaign_log``):
a top-k campaign picks the customers for one item, it does not draw a list for a customer,
so its one-item "lists" (propensity 1.0) are no sample of the list policy being judged —
counted against a target's k items they would only add unsupported pairs and a different
reward channel (a WeCom mass send, not a list on the sidebar). They are counted in a note.
**Group posts are left out** the same way (surface ``group``,
``services/recommend/group_log``): one post to a chat, chosen for the group, shown to every
member alike — no draw of a list for one customer. They are counted in the note too.

**The target**, per list, as of the list's day in the tenant's time zone:

- ``newest``: the top k of the tenant's policy (``services/recommend/policy``) fitted at
  that day — LambdaRank with the tenant's rules, behind the suitability mask of the day;
- ``popularity``: the top k by popularity within the customer's segment, same mask and rules
  (the evaluation's baseline);
- ``logging``: the serving policy itself (π = μ), whose IPS equals the on-policy mean —
  a check of the log's propensities, not a new policy.

A deterministic target gives π = 1 to its k items; those the log never showed and the pool
could not hold are the unsupported pairs (μ = 0), reported, never dropped. The target ignores
the read-time withholding (sent, dismissed, frequency cap): items it would show that serving
held back are unsupported too. A day's policy is fitted once (about 20 s on the demo broker),
so ``since`` bounds the work.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from caifu.adapters.sor.repos import recommend as repo
from caifu.core.errors import ConfigError, NotFoundError
from caifu.recommend import ope
from caifu.recommend.explore import last_slot_p
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant

if TYPE_CHECKING:  # the policy loads LightGBM: a logging-only estimate does without
    from caifu.services.recommend.policy import Fitted

TARGETS = ("newest", "popularity", "logging")
REWARDS = ("clicked", "converted")
BLOCK = 2000  # customers ranked at a time for the target
TOLERANCE = 1e-9  # a logged propensity against the one its pool implies
LEFT_OUT = ("campaign", "group")  # surfaces whose rows are no draw of the list policy (above)


@dataclass
class LoggedList:
    """One list as served: its shown items (μ, reward) and the μ of its pool's other items."""

    key: str
    customer_id: str
    day: dt.date  # the tenant's calendar day it was shown on
    shown: dict[str, tuple[float, float]] = field(default_factory=dict)  # item → (μ, reward)
    unshown: dict[str, float] = field(default_factory=dict)  # pool item not shown → μ
    explored: bool = False


@dataclass
class OffPolicyReport:
    tenant: str
    target: str
    reward: str
    k: int
    since: dt.datetime  # UTC
    days: list[dt.date]
    estimate: ope.OffPolicyEstimate
    explored_lists: int
    epsilons: list[float]  # the rates the lists were served with
    target_versions: list[str]  # the fitted policies' versions (none for ``logging``)
    notes: list[str] = field(default_factory=list)


def _reward(row: Any, reward: str) -> float:
    return 0.0 if getattr(row, f"{reward}_at") is None else 1.0


def _pool_mu(pool: Sequence[str], eps: float) -> dict[str, float]:
    """μ of each item of a last slot's pool (``explore.last_slot_p``): the deterministic one
    first."""
    c = len(pool)
    mu = last_slot_p(np.arange(c) == 0, np.full(c, c), eps)
    return dict(zip(pool, mu.tolist(), strict=True))


def logged_lists(rows: Sequence[Any], tz: str, reward: str) -> list[LoggedList]:
    """The log's rows (``repo.shown_since``) as lists; a logged propensity that disagrees with
    its pool, or an item twice in one list, is refused by rec_id."""
    zone = ZoneInfo(tz)
    lists: dict[str, LoggedList] = {}
    pools: dict[str, tuple[list[str], float]] = {}
    for r in rows:
        key = r.list_id or f"{r.customer_id}\x1f{r.surface}\x1f{r.shown_at.isoformat()}"
        lst = lists.get(key)
        if lst is None:
            day = r.shown_at.replace(tzinfo=dt.UTC).astimezone(zone).date()
            lst = lists[key] = LoggedList(key, r.customer_id, day)
        if r.item_id in lst.shown:
            raise ConfigError(f"recommendation_log: item {r.item_id!r} twice in list {key!r} "
                              f"(rec_id {r.rec_id})")
        lst.shown[r.item_id] = (float(r.propensity), _reward(r, reward))
        lst.explored = lst.explored or bool(r.explored)
        if r.explore_pool:
            pools[key] = (list(json.loads(r.explore_pool)), float(r.epsilon or 0.0))
    for key, (pool, eps) in pools.items():
        lst = lists[key]
        mu = _pool_mu(pool, eps)
        for item, (p, _) in lst.shown.items():
            if item in mu and abs(mu[item] - p) > TOLERANCE:
                raise ConfigError(f"recommendation_log: list {key!r} logged propensity {p} "
                                  f"for {item!r}, its pool (ε = {eps}, c = {len(pool)}) "
                                  f"implies {mu[item]}")
        lst.unshown = {j: m for j, m in mu.items() if j not in lst.shown and m > 0}
    return list(lists.values())


def target_lists(f: Fitted, rows: np.ndarray, k: int, target: str) -> np.ndarray:
    """The target's top-k item rows (n, k; −1 = fewer eligible) of customer ``rows`` at the
    fitted day: the fitted policy's own lists, or popularity within the segment behind the
    same mask and rules (as ``services/recommend/evaluate`` ranks its baseline)."""
    from caifu.recommend import rankers as rk
    from caifu.recommend.topk import top_k

    if target == "newest":
        return f.lists(rows, k)[0]
    score = rk.rank_normalised(f.ctx.popularity.score(f.elig.cust.level[rows]))
    return top_k(score * f.rules.factor[None, :], f.elig.of(rows), f.data.cat.item_type, k,
                 f.rules.limit)


def _targets(lists: list[LoggedList], policy_at: Callable[[dt.date], Fitted], k: int,
             target: str, progress: Callable[[str], None], notes: list[str]
             ) -> tuple[list[set[str]], list[str]]:
    """The target's items per list, fitting the policy once per day of the log."""
    out: list[set[str]] = [set() for _ in lists]
    versions: list[str] = []
    unknown: set[str] = set()
    for day in sorted({lst.day for lst in lists}):
        progress(f"fitting the policy as of {day}")
        f = policy_at(day)
        versions.append(f.version)
        which = [i for i, lst in enumerate(lists) if lst.day == day]
        known = [i for i in which if lists[i].customer_id in f.rows]
        unknown.update(lists[i].customer_id for i in which if lists[i].customer_id not in f.rows)
        progress(f"ranking {len(known):,} lists of {day} by the target")
        for start in range(0, len(known), BLOCK):
            part = known[start:start + BLOCK]
            rows = np.array([f.rows[lists[i].customer_id] for i in part], np.int64)
            for i, items in zip(part, target_lists(f, rows, k, target).tolist(), strict=True):
                out[i] = {str(f.data.cat.item_id[j]) for j in items if j >= 0}
    if unknown:
        notes.append(f"{len(unknown)} logged customer(s) unknown to the policy (not in the "
                     "customer master on the day): the target shows them nothing")
    return out, sorted(set(versions))


def policy_log(lists: list[LoggedList], targets: list[set[str]] | None) -> ope.PolicyLog:
    """One row per (list, item) shown, in the pool or in the target (``targets`` None: the
    logging policy itself, π = μ)."""
    list_id, customer, item, mu, pi, shown, reward = [], [], [], [], [], [], []
    for i, lst in enumerate(lists):
        want = targets[i] if targets is not None else set()
        known = {**lst.unshown, **{j: m for j, (m, _) in lst.shown.items()}}
        for j in sorted(known.keys() | want):
            m = known.get(j, 0.0)
            list_id.append(i)
            customer.append(lst.customer_id)
            item.append(j)
            mu.append(m)
            pi.append(m if targets is None else float(j in want))
            shown.append(j in lst.shown)
            reward.append(lst.shown[j][1] if j in lst.shown else 0.0)
    return ope.PolicyLog(np.array(list_id, np.int64), np.array(item, object), np.array(mu),
                         np.array(pi), np.array(shown, bool), np.array(reward),
                         np.array(customer, object))


def _left_out(logged: Sequence[Any]) -> str:
    """The rows of the ``LEFT_OUT`` surfaces in words: "2 campaign send(s) and 3 group post
    row(s)" ("" when none)."""
    sends = sum(1 for r in logged if r.surface == "campaign")
    posts = sum(1 for r in logged if r.surface == "group")
    return " and ".join(w for w in (f"{sends} campaign send(s)" if sends else "",
                                    f"{posts} group post row(s)" if posts else "") if w)


def evaluate(c: Container, tenant: str, *, target: str = "newest", reward: str = "clicked",
             since_days: int = 30, k: int = 10, bootstrap: int = 0, cap: float = 10.0,
             seed: int = 0, engine: str = "duckdb",
             policy_at: Callable[[dt.date], Fitted] | None = None,
             progress: Callable[[str], None] = lambda _m: None) -> OffPolicyReport:
    """The target's value per list from the tenant's log of the last ``since_days`` days.
    ``policy_at(day)`` gives the fitted policy of a day (default: ``policy.fit``, once per
    day). ConfigError for an unknown target or reward, NotFoundError for an empty log."""
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; one of {', '.join(TARGETS)}")
    if reward not in REWARDS:
        raise ConfigError(f"unknown reward {reward!r}; one of {', '.join(REWARDS)}")
    if since_days < 1 or k < 1 or bootstrap < 0:
        raise ConfigError(f"since must be ≥ 1 day, k ≥ 1 and bootstrap ≥ 0 (got since="
                          f"{since_days}, k={k}, bootstrap={bootstrap})")
    tz = get_tenant(c, tenant).timezone
    since = c.clock.now() - dt.timedelta(days=since_days)
    progress("reading the recommendation log")
    with c.engine.connect() as conn:
        logged = repo.shown_since(conn, tenant, since)
    rows = [r for r in logged if r.surface not in LEFT_OUT]
    left_out = _left_out(logged)
    if not rows:
        what = (f"recommendation lists logged since {since:%Y-%m-%d %H:%M} UTC (only "
                f"{left_out}, which an estimate leaves out)"
                if left_out else f"recommendations logged since {since:%Y-%m-%d %H:%M} "
                "UTC (recommendation_log is empty there)")
        raise NotFoundError(
            f"tenant {tenant!r} has no {what}: serve lists in the sidebar or the API — with "
            "explore.epsilon > 0 in the tenant's recommend configuration — or widen --since")
    lists = logged_lists(rows, tz, reward)
    notes: list[str] = []
    if left_out:
        notes.append(f"{left_out} on the log left out: a top-k campaign picks customers for "
                     "one item and a group post one item for a chat, not a list for a customer")
    targets: list[set[str]] | None = None
    versions: list[str] = []
    if target != "logging":
        targets, versions = _targets(lists, policy_at or _fit(c, tenant, engine, progress), k,
                                     target, progress, notes)
    if not any(lst.explored for lst in lists):
        notes.append("no list in the window explored (explore.epsilon was 0): only the "
                     "deterministic lists' items are supported")
    estimate = ope.evaluate(policy_log(lists, targets), cap=cap, bootstrap=bootstrap,
                            rng=np.random.default_rng(seed) if bootstrap else None)
    epsilons = sorted({float(r.epsilon) for r in rows if r.epsilon is not None})
    return OffPolicyReport(tenant, target, reward, k, since, sorted({x.day for x in lists}),
                           estimate, sum(x.explored for x in lists), epsilons, versions, notes)


def _fit(c: Container, tenant: str, engine: str, progress: Callable[[str], None]
         ) -> Callable[[dt.date], Fitted]:
    """``policy.fit`` at a day, the tenant's data read once."""
    from caifu.services.recommend import inputs as rin
    from caifu.services.recommend import policy

    config, _ = rin.load_config(c, tenant)
    data = rin.read(c, tenant, config)

    def at(day: dt.date) -> Fitted:
        return policy.fit(c, tenant, day, engine=engine, data=data, progress=progress)
    return at


__all__ = ["REWARDS", "TARGETS", "LoggedList", "OffPolicyReport", "evaluate", "logged_lists",
           "policy_log", "target_lists"]
