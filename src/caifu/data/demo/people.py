"""Customers of one chunk: latent traits first, then everything observable that follows.

Behaviour comes from per-customer latent traits (activity rate, risk appetite, churn hazard,
ChiNext / Level-2 interest, redemption propensity, fund affinity, app engagement, acquisition
channel), and preferences over content and products that partly follow them
(``preferences``). The traits go to ``_ground_truth/latent_traits.parquet``, the preferences to
``preference_vectors.parquet`` beside it; the product only ever sees what they cause:
accounts and permissions, assessments, trades, events, chats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from caifu.core.ids import USCC_ALPHABET, make_uscc, resident_id_for
from caifu.core.suitability import VARIETIES
from caifu.data.contracts.tables import CHANNELS
from caifu.data.demo import preferences, text
from caifu.data.demo.world import World, day_number, mobiles, person_names, to_date
from caifu.data.demo.writers import dates

NO_DAY = 10**7  # "never": later than any day number we use
CHURN_KINDS = ("none", "dormant", "transfer_out")
DEVICES = ("ios", "android", "pc", "h5")
# rough cost of acquiring one customer per channel (yuan), for CLV efficiency
ACQUISITION_COST = {"branch": 480, "app": 160, "wecom": 110, "bank": 220, "internet": 300,
                    "referral": 90, "campaign": 260}
_COMPANY_WORDS = ("华信", "恒泰", "鼎盛", "瑞丰", "弘远", "金石", "汇通", "博雅", "中和", "天成", "景行",
                  "长青", "致远", "宏达", "嘉禾", "凯盛")
_COMPANY_KINDS = ("投资管理有限公司", "科技有限公司", "实业有限公司", "资产管理有限公司")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


@dataclass
class Population:
    chunk: int
    cid: np.ndarray
    customer_id: np.ndarray
    fund_account: np.ndarray
    institution: np.ndarray
    male: np.ndarray
    birth: np.ndarray
    opened: np.ndarray
    branch: np.ndarray
    advisor: np.ndarray  # index into world.advisor_ids, -1 none
    channel: np.ndarray  # index into CHANNELS
    wealth: np.ndarray
    activity: np.ndarray  # trades per month while active
    risk: np.ndarray
    chinext_i: np.ndarray
    level2_i: np.ndarray
    redeem_p: np.ndarray
    fund_aff: np.ndarray
    app_eng: np.ndarray
    hazard: np.ndarray
    churn_day: np.ndarray
    churn_kind: np.ndarray
    closed_day: np.ndarray
    active_from: np.ndarray
    active_to: np.ndarray
    c_level: np.ndarray
    chinext_day: np.ndarray
    star_day: np.ndarray
    bse_day: np.ndarray
    margin_day: np.ndarray
    l2_since: np.ndarray
    l2_until: np.ndarray
    device: np.ndarray
    commission: np.ndarray
    names: list[str]
    id_type: np.ndarray
    id_number: list[str]
    mobile: np.ndarray  # "" = none
    status: np.ndarray
    consent: np.ndarray  # agreed to marketing
    taste: np.ndarray  # hidden preference over preferences.TOPICS (customers × topics)

    @property
    def n(self) -> int:
        return len(self.cid)


def _window_day(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A day in [lo, hi] (NO_DAY where hi < lo)."""
    span = hi - lo
    d = lo + np.floor(rng.random(len(lo)) * (span + 1)).astype(np.int64)
    return np.where(span >= 0, d, NO_DAY)


def _permission(rng: np.random.Generator, p: np.ndarray, opened: np.ndarray, since: int,
                start_d: int, active_to: np.ndarray, before_share: float) -> np.ndarray:
    """Opening day of a board permission: some long-standing customers already had it
    before the window, the others open inside it (never after they stopped trading)."""
    n = len(p)
    has = rng.random(n) < p
    early_lo = np.maximum(opened + 180, since)
    early = (rng.random(n) < before_share) & (early_lo < start_d - 1)
    before = _window_day(rng, early_lo, np.full(n, start_d - 1))
    inside = _window_day(rng, np.maximum(opened + 45, start_d), active_to)
    return np.where(has, np.where(early, before, inside), NO_DAY)


def _resident_ids(rng: np.random.Generator, chunk: int, birth: np.ndarray, male: np.ndarray,
                  branch_city: np.ndarray) -> list[str]:
    n = len(birth)
    home = np.where(rng.random(n) < 0.85, branch_city, rng.integers(0, len(text.CITIES), n))
    prefix = np.array([int(c[2][:4]) for c in text.CITIES])[home]
    address = prefix * 100 + rng.integers(1, 10, n)
    # seq3 = 50 * (chunk mod 20) + 2k + sex: unique across chunks up to 20 chunks
    k = rng.integers(0, 25, n)
    for _ in range(20):
        key = (address.astype(np.int64) * 100_000 + birth) * 32 + k
        _, first = np.unique(key, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        if not dup.any():
            break
        k[dup] = rng.integers(0, 25, int(dup.sum()))
    seq = 50 * (chunk % 20) + 2 * k + male.astype(np.int64)
    return [resident_id_for(str(a), to_date(b), int(s))
            for a, b, s in zip(address, birth, seq, strict=True)]


def make_population(world: World, rng: np.random.Generator, chunk: int, cid0: int,
                    n: int, taste_rng: np.random.Generator) -> Population:
    """``n`` customers from ``rng``; their content and product preferences come from
    ``taste_rng``, a stream of their own, so every other trait is drawn as it was before
    preferences existed."""
    start_d, end_d = day_number(world.start), day_number(world.end)
    cid = np.arange(cid0, cid0 + n)
    institution = rng.random(n) < 0.015
    in_window = rng.random(n) < 0.35
    old = np.maximum(start_d - 1 - rng.gamma(1.2, 1500, n).astype(np.int64),
                     day_number(date(2003, 1, 1)))
    new = start_d + np.floor(rng.random(n) ** 0.8 * (end_d - start_d)).astype(np.int64)
    new = world.days[np.minimum(world.day_index(new), world.n_days - 1)]
    opened = np.where(in_window, new, old)
    era = np.where(opened < day_number(date(2015, 1, 1)), 0, np.where(in_window, 2, 1))
    ch_p = np.array([[.60, .00, .00, .25, .00, .15, .00],
                     [.25, .30, .02, .15, .18, .10, .00],
                     [.12, .30, .15, .08, .15, .08, .12]])
    u = rng.random(n)[:, None]
    channel = (u > np.cumsum(ch_p[era], axis=1)).sum(axis=1).clip(0, len(CHANNELS) - 1)

    age = np.clip(rng.normal(np.where(np.isin(channel, (1, 2, 4)), 36, 47), 12, n), 19, 88)
    birth = end_d - (age * 365.25).astype(np.int64) - rng.integers(0, 365, n)
    birth = np.minimum(birth, opened - 18 * 366 - rng.integers(0, 2000, n))
    male = rng.random(n) < 0.56
    wealth = np.clip(rng.lognormal(np.log(80_000), 1.4, n), 1_000, 5e8) * np.where(institution, 20, 1)

    never = rng.random(n) < 0.2
    activity = np.where(never, 0.0, rng.lognormal(np.log(2.4) - 0.5, 1.0, n))
    young = (88 - age) / 70
    risk = np.clip(rng.beta(2.2, 2.2, n) + 0.15 * (young - 0.5), 0, 1)
    chinext_i = np.clip(rng.beta(1.3, 3.0, n) + 0.35 * (risk - 0.5), 0, 1)
    level2_i = np.clip(rng.beta(1.0, 4.0, n) + 0.12 * np.log1p(activity), 0, 1)
    redeem_p = rng.beta(2.0, 5.0, n)
    fund_aff = np.clip(rng.beta(1.5, 3.0, n) + 0.15 * (age > 50) - 0.1 * risk, 0, 1)
    app_eng = np.where(rng.random(n) < 0.06, 0.0, rng.gamma(1.5, 1.0, n)) * np.where(
        age > 65, 0.4, 1.0)

    active_from = np.maximum(opened, start_d)
    hazard = 0.05 + 0.25 * rng.beta(1.2, 5.0, n) + 0.08 * (activity < 0.5)
    churn = active_from + 20 + rng.exponential(365 / hazard).astype(np.int64)
    churned = (churn < end_d - 5) & ~never & ~institution
    churn_day = np.where(churned, churn, NO_DAY)
    churn_kind = np.where(churned, np.where(rng.random(n) < 0.4, 2, 1), 0)
    closed_day = np.where(churn_kind == 2, np.minimum(churn_day + rng.integers(1, 6, n), end_d),
                          NO_DAY)
    active_to = np.minimum(churn_day, end_d)

    score = np.clip(np.round(100 * risk + rng.normal(0, 8, n)), 0, 100).astype(np.int64)
    c_level = np.minimum(score // 20 + 1, 5)
    trader = activity > 0
    chinext_day = _permission(rng, _sigmoid(-2.4 + 3.5 * chinext_i + 1.5 * risk) * trader,
                              opened, day_number(date(2009, 10, 30)), start_d, active_to, 0.55)
    lw = np.log10(wealth / 5e5)
    star_day = _permission(rng, _sigmoid(-3.2 + 3 * risk + 0.8 * lw) * trader, opened,
                           day_number(date(2019, 7, 22)), start_d, active_to, 0.6)
    bse_day = _permission(rng, _sigmoid(-4.5 + 3 * risk + 0.5 * lw) * trader, opened,
                          day_number(date(2021, 11, 15)), start_d, active_to, 0.5)
    margin_day = _permission(rng, _sigmoid(-4.2 + 2.5 * risk + 1.2 * lw) * trader, opened,
                             day_number(date(2010, 3, 31)), start_d, active_to, 0.6)
    has_l2 = rng.random(n) < _sigmoid(-3.8 + 6 * level2_i) * (trader | (app_eng > 0.5))
    l2_since = np.where(has_l2, _window_day(rng, active_from + 7, active_to), NO_DAY)
    term = np.array([30, 90, 180, 365])[rng.choice(4, n, p=[0.35, 0.25, 0.15, 0.25])]
    term *= np.where(level2_i > 0.7, 2, 1)  # keen subscribers renew
    l2_until = np.where(l2_since < NO_DAY, l2_since + term - 1, NO_DAY)

    nb = len(world.branch_weight)
    branch = rng.choice(nb, n, p=world.branch_weight)
    advisor = np.full(n, -1)
    with_adv = rng.random(n) < np.where(np.isin(channel, (0, 2, 5)), 0.9, 0.55)
    by_branch = [np.flatnonzero(world.advisor_branch == b) for b in range(nb)]
    pick = rng.integers(0, 1 << 30, n)
    for b in range(nb):
        rows = np.flatnonzero(with_adv & (branch == b))
        if len(rows) and len(by_branch[b]):
            advisor[rows] = by_branch[b][pick[rows] % len(by_branch[b])]

    id_kind = rng.random(n)
    id_type = np.where(institution, "credit_code",
                       np.where(id_kind < 0.003, "passport", np.where(
                           id_kind < 0.006, "hk_macau_permit",
                           np.where(id_kind < 0.007, "taiwan_permit", "resident_id"))))
    ids = _resident_ids(rng, chunk, birth, male, branch)
    names = person_names(rng, male)
    org = rng.integers(0, len(USCC_ALPHABET), (n, 8))
    other = rng.integers(10**7, 10**8, n)
    for i in np.flatnonzero(id_type != "resident_id"):
        t = id_type[i]
        if t == "credit_code":
            city = text.CITIES[branch[i]]
            ids[i] = make_uscc("9", "1", city[2], "".join(USCC_ALPHABET[j] for j in org[i]))
            names[i] = (city[1].removesuffix("市") + _COMPANY_WORDS[other[i] % 16]
                        + _COMPANY_KINDS[other[i] % 4])
        else:
            ids[i] = {"passport": "E", "hk_macau_permit": "H", "taiwan_permit": ""}[t] + str(other[i])

    mobile = mobiles(rng, n)
    mobile[(rng.random(n) < 0.03) & (opened < day_number(date(2012, 1, 1)))] = ""
    status = np.where(churn_kind == 2, "closed", "normal").astype(object)
    dormant = ((churn_kind == 1) & (churn_day < end_d - 365)) | (never & (opened < start_d)
                                                                & (rng.random(n) < 0.5))
    status[dormant] = "dormant"
    status[(rng.random(n) < 0.003) & (status == "normal")] = "frozen"
    device = np.where(rng.random(n) < 0.85, rng.choice(4, n, p=[0.42, 0.46, 0.08, 0.04]),
                      rng.integers(0, 4, n))
    commission = rng.choice([0.0001, 0.00015, 0.0002, 0.00025, 0.0003], n,
                            p=[0.15, 0.25, 0.25, 0.2, 0.15])
    consent = rng.random(n) < 0.82
    taste = preferences.customer_preferences(
        taste_rng, risk=risk, chinext_i=chinext_i, level2_i=level2_i, fund_aff=fund_aff,
        activity=activity, age=age, has_advisor=advisor >= 0)
    return Population(
        chunk, cid, np.array([str(1_000_000_001 + c) for c in cid]),
        np.array([f"31{c + 1:010d}" for c in cid]), institution, male, birth, opened, branch,
        advisor, channel, wealth, activity, risk, chinext_i, level2_i, redeem_p, fund_aff, app_eng,
        hazard, churn_day, churn_kind, closed_day, active_from, active_to, c_level, chinext_day,
        star_day, bse_day, margin_day, l2_since, l2_until, device, commission, names, id_type, ids,
        mobile, status.astype(str), consent, taste)


def _opt_days(days: np.ndarray) -> pa.Array:
    return dates(np.where(days < NO_DAY, days, 0), valid=days < NO_DAY)


def customers_table(world: World, pop: Population) -> pa.Table:
    person = ~pop.institution
    return pa.table({
        "customer_id": pop.customer_id, "name": pop.names,
        "customer_type": np.where(pop.institution, "institution", "individual"),
        "id_type": pop.id_type, "id_number": pop.id_number,
        "gender": pa.array(np.where(pop.male, "M", "F"), mask=~person),
        "birth_date": dates(pop.birth, valid=person),
        "mobile": pa.array(pop.mobile, mask=pop.mobile == ""),
        "branch_id": np.asarray(world.branches["branch_id"].to_pylist())[pop.branch],
        "advisor_id": pa.array(world.advisor_ids[np.maximum(pop.advisor, 0)], mask=pop.advisor < 0),
        "opened_on": dates(pop.opened),
        "channel": np.asarray(CHANNELS)[pop.channel],
        "status": pop.status, "closed_on": _opt_days(pop.closed_day),
        "professional": pop.institution | (pop.wealth > 5e6),
        "marketing_consent": pop.consent,
    })


def accounts_table(pop: Population) -> pa.Table:
    c = pop.cid.astype(np.int64)
    sh_num = (c * 387_420_489 + 12_345_678) % 10**9
    sz_num = (c * 123_456_791 + 7_654_321) % 10**9
    sh = np.array([f"{'B' if inst else 'A'}{x:09d}" for x, inst in
                   zip(sh_num, pop.institution, strict=True)])
    sz = np.array([f"0{x:09d}" for x in sz_num])
    gap = (c * 2_654_435_761) % 100  # deterministic: some customers have only one market
    status = np.where(pop.churn_kind == 2, "transferred_out",
                      np.where(pop.status == "frozen", "frozen", "normal"))
    return pa.table({
        "fund_account": pop.fund_account, "customer_id": pop.customer_id,
        "sh_account": pa.array(sh, mask=gap < 4), "sz_account": pa.array(sz, mask=gap >= 96),
        "opened_on": dates(pop.opened), "status": status,
        "chinext_opened_on": _opt_days(pop.chinext_day), "star_opened_on": _opt_days(pop.star_day),
        "bse_opened_on": _opt_days(pop.bse_day), "margin_opened_on": _opt_days(pop.margin_day),
        "level2_since": _opt_days(pop.l2_since), "level2_until": _opt_days(pop.l2_until),
    })


def suitability_table(world: World, pop: Population, rng: np.random.Generator,
                      variety_rng: np.random.Generator) -> pa.Table:
    """Assessments: the latest per customer and, for some, an earlier one. ``variety_rng``
    draws the 投资品种 answers alone, so adding them left every other column as it was."""
    end_d = day_number(world.end)
    n = pop.n
    three_years = 3 * 365
    recent = pop.opened >= end_d - three_years
    expired = ~recent & (rng.random(n) < 0.09)
    latest = np.where(recent, np.where(rng.random(n) < 0.3,
                                       _window_day(rng, pop.opened, np.full(n, end_d)), pop.opened),
                      np.where(expired,
                               _window_day(rng, np.maximum(pop.opened, end_d - 2 * three_years),
                                           np.full(n, end_d - three_years - 1)),
                               _window_day(rng, np.full(n, end_d - three_years),
                                           np.full(n, end_d))))
    latest = np.minimum(latest, end_d)
    earlier = (latest - pop.opened > 400) & (rng.random(n) < 0.45)
    prev = np.maximum(pop.opened, latest - rng.integers(365, 3 * 365, n))
    score = np.clip(pop.c_level * 20 - 10 + rng.integers(-9, 10, n), 0, 100)
    rows = np.r_[np.flatnonzero(earlier), np.arange(n)]
    is_prev = np.r_[np.ones(int(earlier.sum()), bool), np.zeros(n, bool)]
    day = np.where(is_prev, prev[rows], latest[rows])
    sc = np.where(is_prev, np.maximum(score[rows] - rng.integers(0, 16, len(rows)), 0), score[rows])
    level = np.minimum(sc // 20 + 1, 5)
    c1 = level == 1
    no_loss = c1 & (rng.random(len(rows)) < 0.35)
    no_civil = c1 & (rng.random(len(rows)) < 0.03)
    objectives = np.array(["preserve", "income", "steady", "growth", "aggressive"])
    objective = objectives[np.clip(level - 1 - rng.integers(0, 2, len(rows)), 0, 4)]
    horizon = np.array(["short", "medium", "long"])[
        np.clip((level + rng.integers(-1, 2, len(rows))) // 2, 0, 2)]
    version = np.where(day < day_number(date(2021, 1, 1)), "SAC-2017",
                       np.where(day < day_number(date(2025, 1, 1)), "SAC-2021", "2025v1"))
    order = np.lexsort((is_prev.astype(int) * -1, pop.cid[rows]))
    rows, is_prev, day, sc, level = rows[order], is_prev[order], day[order], sc[order], level[order]
    return pa.table({
        "assessment_id": [f"FX{c:09d}{0 if p else 1}" for c, p in
                          zip(pop.cid[rows], is_prev, strict=True)],
        "customer_id": pop.customer_id[rows], "questionnaire_version": version[order],
        "assessed_on": dates(day), "score": sc.astype(np.int64),
        "risk_level": np.char.add("C", level.astype(str)),
        "no_loss_tolerance": no_loss[order], "no_civil_capacity": no_civil[order],
        "objective": objective[order], "horizon": horizon[order],
        "valid_until": dates(day + three_years - 1),
        "varieties": _varieties(level, version[order], variety_rng),
    })


def _varieties(level: np.ndarray, version: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """The 投资品种 answer of assessments of C ``level``: a conservative investor cash and
    fixed income, a C3 equity too, C4/C5 often derivatives, C5 some alternatives. The
    SAC-2017 questionnaire did not ask, and a tenth of the later answers were not kept: NULL,
    no variety restriction."""
    u = rng.random((len(level), 6))
    chosen = np.stack([
        (level <= 2) | (u[:, 0] < 0.7),  # cash
        (level >= 2) | (u[:, 1] < 0.5),  # fixed_income
        (level >= 3) | ((level == 2) & (u[:, 2] < 0.4)),  # equity
        ((level == 4) & (u[:, 3] < 0.4)) | ((level == 5) & (u[:, 3] < 0.7)),  # derivative
        (level == 5) & (u[:, 4] < 0.5),  # alternative
    ], axis=1)
    codes = [",".join(v for v, on in zip(VARIETIES, row, strict=True) if on) for row in chosen]
    asked = (version != "SAC-2017") & (u[:, 5] >= 0.1)
    return pa.array(codes, pa.string(), mask=~asked)


def latent_table(pop: Population) -> pa.Table:
    channel = np.asarray(CHANNELS)[pop.channel]
    return pa.table({
        "customer_id": pop.customer_id, "channel": channel,
        "acquisition_cost": np.array([ACQUISITION_COST[c] for c in channel], dtype=np.float64),
        "wealth": pop.wealth, "activity_rate": pop.activity, "never_trades": pop.activity == 0,
        "risk_appetite": pop.risk, "chinext_interest": pop.chinext_i,
        "level2_interest": pop.level2_i, "redemption_propensity": pop.redeem_p,
        "fund_affinity": pop.fund_aff, "app_engagement": pop.app_eng,
        "churn_hazard": pop.hazard, "churn_kind": np.asarray(CHURN_KINDS)[pop.churn_kind],
        "churn_date": _opt_days(pop.churn_day), "risk_level": np.char.add("C", pop.c_level.astype(str)),
    })
