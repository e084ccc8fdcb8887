"""Reading a tenant's data into the recommender's shapes (``caifu.recommend``).

Everything is as of a cutoff day: the assessment in force then, the funds held then, the
interactions before it, the profile features as of it — so an evaluation can stand at a past
day and look at what happened next, and the live path is the same code at today.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from caifu.adapters.sor.repos import ingest as ingest_repo
from caifu.analytics import propensity
from caifu.core.suitability import HORIZONS, OBJECTIVES, varieties_of
from caifu.data.contracts import registry
from caifu.data.contracts.arrow import contract_schema
from caifu.recommend import config as rconfig
from caifu.recommend.catalogue import EPOCH, Catalogue, build, compliance_ok
from caifu.recommend.eligibility import NO_EXPIRY, Customers, Exclusions, variety_bits
from caifu.recommend.interactions import Interactions, collect
from caifu.services.compliance.chat_review import tenant_lexicon
from caifu.services.container import Container

BOARDS = ("main", "chinext", "star", "bse", "etf")


def load_config(c: Container, tenant: str) -> tuple[rconfig.RecommendConfig, str]:
    """The tenant's ``recommend/<tenant>.yaml`` over the packaged default, and its source."""
    from caifu.services.recommend.serving import tenant_config

    path = c.root / "recommend" / f"{tenant}.yaml"
    return tenant_config(c, tenant), str(path) if path.exists() else \
        "caifu/data/recommend/default.yaml"


def sor_table(c: Container, tenant: str, name: str) -> pa.Table:
    contract = registry()[name]
    with c.engine.connect() as conn:
        data = ingest_repo.rows(conn, tenant, contract)
    return data if data is not None else contract_schema(contract).empty_table()


def lake_table(c: Container, tenant: str, name: str, columns: list[str]) -> pa.Table | None:
    quoted = ", ".join('"' + x + '"' for x in columns)
    return c.lake_query(tenant, name, f"select {quoted} from {name}")


@dataclass
class TenantData:
    """The tables the recommender reads, once per run."""

    cat: Catalogue
    config: rconfig.RecommendConfig
    customers: pa.Table
    accounts: pa.Table
    assessments: pa.Table
    interactions: Interactions
    fund_transactions: pa.Table | None
    item_board: np.ndarray


def read(c: Container, tenant: str, config: rconfig.RecommendConfig) -> TenantData:
    cat = build(sor_table(c, tenant, "content_items"), sor_table(c, tenant, "fund_products"),
                config)
    cat.compliance_ok = compliance_ok(cat.title, tenant_lexicon(c, tenant))
    accounts = sor_table(c, tenant, "accounts")
    events = lake_table(c, tenant, "app_events",
                        ["customer_id", "event_time", "event_type", "content_id", "fund_code"])
    funds = lake_table(c, tenant, "fund_transactions",
                       ["customer_id", "fund_code", "txn_date", "txn_type", "shares"])
    touches = lake_table(c, tenant, "campaign_touches",
                         ["customer_id", "campaign_id", "touched_at", "stage"])
    inter = collect(cat, app_events=events, fund_transactions=funds, campaign_touches=touches,
                    campaigns=sor_table(c, tenant, "campaigns"), accounts=accounts)
    securities = sor_table(c, tenant, "securities")
    board_of = dict(zip(securities["security_code"].to_pylist(),
                        securities["board"].to_pylist(), strict=True)) \
        if "board" in securities.column_names else {}
    item_board = np.array([BOARDS.index(b) if (b := board_of.get(s)) in BOARDS else -1
                           for s in cat.security_code.tolist()], np.int64)
    return TenantData(cat, config, sor_table(c, tenant, "customers"), accounts,
                      sor_table(c, tenant, "suitability_assessments"), inter, funds, item_board)


def customers_as_of(data: TenantData, ids: list[str], day: dt.date) -> Customers:
    """Eligibility columns of ``ids`` from the assessment in force on ``day`` (the newest
    assessed on or before it) and the customers' consent."""
    a = data.assessments.filter(pc.less_equal(data.assessments["assessed_on"], day))
    a = a.sort_by([("customer_id", "ascending"), ("assessed_on", "descending"),
                   ("assessment_id", "descending")])
    latest: dict[str, dict[str, object]] = {}
    for row in a.to_pylist():
        latest.setdefault(str(row["customer_id"]), row)
    cust = data.customers
    consent = dict(zip(cust["customer_id"].to_pylist(), cust["marketing_consent"].to_pylist(),
                       strict=True))
    prof = dict(zip(cust["customer_id"].to_pylist(), cust["professional"].to_pylist(),
                    strict=True))
    n = len(ids)
    out = Customers(np.asarray(ids, dtype=object), np.zeros(n, np.int8), np.zeros(n, bool),
                    np.full(n, NO_EXPIRY, np.int32), np.zeros(n, bool), np.zeros(n, np.int8),
                    np.zeros(n, np.int8), np.zeros(n, np.int16), np.zeros(n, bool),
                    np.zeros(n, bool))
    for i, cid in enumerate(ids):
        out.consent[i] = consent.get(cid) is not False  # not recorded: not refused
        out.professional[i] = bool(prof.get(cid))
        row = latest.get(cid)
        if row is None:
            continue
        level = int(str(row["risk_level"])[1])
        out.level[i] = level
        out.lowest[i] = level == 1 and bool(row["no_loss_tolerance"] or row["no_civil_capacity"])
        until = row["valid_until"]
        if isinstance(until, dt.date):
            out.valid_until[i] = (until - EPOCH).days
        if row.get("objective") in OBJECTIVES:
            out.objective[i] = OBJECTIVES.index(str(row["objective"])) + 1
        if row.get("horizon") in HORIZONS:
            out.horizon[i] = HORIZONS.index(str(row["horizon"])) + 1
        chosen = varieties_of(row["varieties"])  # None: the questionnaire did not ask
        if chosen is not None:
            out.varieties_known[i] = True
            out.varieties[i] = variety_bits(chosen)
    return out


def _num(features: pa.Table, name: str, default: float = 0.0) -> np.ndarray:
    if name not in features.column_names:
        return np.full(features.num_rows, default)
    col = features[name].cast(pa.float64())
    return np.asarray(col.fill_null(default).to_numpy(zero_copy_only=False), np.float64)


def prerequisites(features: pa.Table, day: dt.date) -> dict[str, np.ndarray]:
    """Each prerequisite an action may require, per customer of ``features`` (profile features
    as of ``day``, in their row order) — docs/recommendations.md states each rule."""
    first = features["first_trade_date"].cast(pa.date32()).cast(pa.int32()).fill_null(
        np.iinfo(np.int32).max).to_numpy(zero_copy_only=False)
    aum = _num(features, "aum")
    fund_now, fund_before = _num(features, "fund_value"), _num(features, "fund_30d_ago")
    since_trade = _num(features, "days_since_last_trade", float("inf"))
    return {
        "chinext_not_open": _num(features, "chinext_opened") == 0,
        "star_not_open": _num(features, "star_opened") == 0,
        "level2_not_active": _num(features, "level2_active") == 0,
        "assets_100k": aum >= 100_000,
        "assets_500k": aum >= 500_000,
        "trading_24_months": first <= (day - EPOCH).days - 730,
        "trades_recently": _num(features, "trades_90d") > 0,
        "holds_funds": fund_now > 0,
        "fund_in_loss": (fund_before > 0) & (fund_now < 0.97 * fund_before),
        "dormant": since_trade >= 180,
    }


def unmet(cat: Catalogue, config: rconfig.RecommendConfig, features: pa.Table,
          rows: dict[str, int], day: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """(customer row, action row) pairs whose action's prerequisites are not all met; a
    customer without profile features on ``day`` meets none."""
    have = prerequisites(features, day)
    pos = np.array([rows.get(c, -1) for c in features["customer_id"].to_pylist()], np.int64)
    known = np.zeros(len(rows), bool)
    known[pos[pos >= 0]] = True
    out_c: list[np.ndarray] = []
    out_i: list[np.ndarray] = []
    for name, action in config.actions.items():
        item = cat.index.get("A:" + name)
        if item is None or not action.requires:
            continue
        met = np.zeros(len(rows), bool)
        met[pos[pos >= 0]] = np.logical_and.reduce([have[r] for r in action.requires])[pos >= 0]
        fails = np.flatnonzero(~met)
        out_c.append(fails)
        out_i.append(np.full(len(fails), item, np.int64))
    if not out_c:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_c).astype(np.int64), np.concatenate(out_i)


def exclusions_as_of(data: TenantData, rows: dict[str, int], day: dt.date,
                     features: pa.Table | None = None) -> Exclusions:
    """Funds held on ``day`` (net shares > 0) and permissions already open are not offered;
    an action whose prerequisites the profile on ``day`` does not show is refused
    (PREREQUISITE; without ``features`` every action with prerequisites is)."""
    cat, d = data.cat, (day - EPOCH).days
    held_c: list[int] = []
    held_i: list[int] = []
    ft = data.fund_transactions
    if ft is not None and ft.num_rows:
        ft = ft.filter(pc.less_equal(ft["txn_date"], day))
        sign = pc.if_else(pc.equal(ft["txn_type"], "redeem"), -1.0, 1.0)
        shares = pc.multiply(ft["shares"].cast(pa.float64()), sign)
        net = pa.table({"c": ft["customer_id"], "f": ft["fund_code"], "s": shares}) \
            .group_by(["c", "f"]).aggregate([("s", "sum")])
        net = net.filter(pc.greater(net["s_sum"], 1e-6))
        for cid, code in zip(net["c"].to_pylist(), net["f"].to_pylist(), strict=True):
            r, i = rows.get(cid), cat.index.get("F" + str(code))
            if r is not None and i is not None:
                held_c.append(r)
                held_i.append(i)
    inter = data.interactions.window(None, d)
    for action in ("open_chinext", "open_star", "subscribe_level2"):
        i = cat.index.get("A:" + action)
        if i is None:
            continue
        for cid in inter.customer_id[inter.item == i].tolist():
            if cid in rows:
                held_c.append(rows[cid])
                held_i.append(i)
    held = (np.array(held_c, np.int64), np.array(held_i, np.int64))
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if features is None:
        features = pa.table({"customer_id": pa.array([], pa.string()),
                             "first_trade_date": pa.array([], pa.date32())})
    return Exclusions(held, empty, unmet(cat, data.config, features, rows, day),
                      np.zeros(len(rows), bool))


def customer_features(features: pa.Table, ids: list[str]) -> tuple[np.ndarray, list[str]]:
    """Profile features (``pipelines.profile``) as a numeric matrix in ``ids`` order, the
    columns the propensity models use (no identifiers, no today's-state master data)."""
    columns = propensity.feature_columns(features)
    design = propensity.design_matrix(features, columns)
    pos = {c: i for i, c in enumerate(design.customer_ids)}
    x = np.full((len(ids), len(design.names)), np.nan, np.float32)
    have = np.array([pos.get(c, -1) for c in ids])
    x[have >= 0] = design.x[have[have >= 0]]
    return x, list(design.names)
