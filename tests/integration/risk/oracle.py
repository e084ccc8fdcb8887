"""The exposure oracle: which customers hold which of a story's securities today, and the
value at risk of each route, as plain DuckDB SQL over a tenant's Parquet files — what the
exposure tests, the real-time test and the demo replay's test compare caifu's alerts with."""

from __future__ import annotations

from decimal import Decimal

import duckdb

from caifu.services.container import Container


def holders(c: Container, codes: list[str], tenant: str = "acme") -> set[tuple[str, str]]:
    """The holder set as plain SQL: directly or through funds (see ``routes``)."""
    return set(routes(c, codes, tenant)) if codes else set()


def routes(c: Container, codes: list[str], tenant: str = "acme") -> dict[tuple[str, str], dict[str, Decimal]]:
    """(customer, security) → {route: value at risk}, as plain SQL over the Parquet files:
    the latest positions snapshot on or before today; fund positions at the end of today
    (signed shares plus the opening balance the ledger implies, at the fund's NAV of its
    latest transaction day) through each fund's latest disclosed top holdings."""
    pos, tx, top = (c.lake.files(tenant, t) for t in ("positions", "fund_transactions",
                                                      "fund_top_holdings"))
    wanted = ", ".join(f"'{x}'" for x in codes)
    rows = duckdb.sql(f"""
        WITH p AS (SELECT * FROM read_parquet({pos!r})),
        direct AS (
          SELECT customer_id, security_code, 'position' AS via, sum(market_value) AS var
          FROM p
          WHERE snapshot_date = (SELECT max(snapshot_date) FROM p
                                 WHERE snapshot_date <= current_date)
            AND security_code IN ({wanted})
          GROUP BY customer_id, security_code HAVING sum(quantity) > 0),
        f AS (SELECT * FROM read_parquet({tx!r}) WHERE txn_date <= current_date),
        b AS (SELECT customer_id, fund_code,
                     CASE WHEN txn_type = 'redeem' THEN -shares ELSE shares END AS s,
                     sum(CASE WHEN txn_type = 'redeem' THEN -shares ELSE shares END) OVER (
                       PARTITION BY customer_id, fund_code
                       ORDER BY txn_date, txn_type = 'redeem', txn_id) AS bal FROM f),
        held AS (SELECT customer_id, fund_code, sum(s) + greatest(-min(bal), 0) AS shares
                 FROM b GROUP BY ALL HAVING sum(s) + greatest(-min(bal), 0) > 0),
        nav AS (SELECT fund_code, max(nav) AS nav FROM f WHERE (fund_code, txn_date) IN
                (SELECT (fund_code, max(txn_date)) FROM f GROUP BY fund_code) GROUP BY ALL),
        t AS (SELECT * FROM read_parquet({top!r}) WHERE report_date <= current_date),
        latest AS (SELECT * FROM t WHERE (fund_code, report_date) IN
                   (SELECT (fund_code, max(report_date)) FROM t GROUP BY fund_code)),
        funds AS (
          SELECT h.customer_id, l.security_code, 'fund:' || h.fund_code AS via,
                 round(round(h.shares * nav.nav, 2) * l.nav_pct * 0.01, 2) AS var
          FROM held h JOIN nav USING (fund_code) JOIN latest l USING (fund_code)
          WHERE l.security_code IN ({wanted}))
        SELECT * FROM direct UNION ALL SELECT * FROM funds""").fetchall()
    out: dict[tuple[str, str], dict[str, Decimal]] = {}
    for cid, code, via, var in rows:
        out.setdefault((cid, code), {})[via] = Decimal(var).quantize(Decimal("0.01"))
    return out
