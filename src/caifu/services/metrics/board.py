"""The headline KPIs for one caller: the value report's section 0 and the console's home.

    board(c, principal, as_of)  → 12 months by month of the headline metrics he may see,
                                  answered in one engine session, and why any other is refused

The figures are the metric layer's own (``services.metrics.query.answers``: scope, small
groups withheld, version and definition hash on each); nothing is computed here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.metrics.catalog import catalog as catalog_of
from caifu.services.metrics.query import Answer, answers, refusal
from caifu.services.platform.access import tenant_of

# the headline figures: governed metrics (src/caifu/data/metrics), never computed elsewhere
HEADLINE = ("customers_total", "new_customers", "funded_accounts", "active_traders", "aum",
            "net_inflow", "fund_sales", "fund_redemptions", "commission_revenue",
            "chinext_conversion", "wecom_follows", "campaign_conversion")


def twelve_months(as_of: dt.date) -> tuple[dt.date, dt.date]:
    """The 12 calendar months to ``as_of``: from the first day of the 11th month before."""
    m = as_of.month - 11
    return dt.date(as_of.year + (m - 1) // 12, (m - 1) % 12 + 1, 1), as_of


def span(c: Container, as_of: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The 12 months to ``as_of``, by default to today."""
    return twelve_months(as_of or c.clock.now().date())


@dataclass
class Board:
    start: dt.date
    end: dt.date
    answers: list[Answer]  # in the order asked, the refused ones left out
    refused: dict[str, str] = field(default_factory=dict)  # metric → why not for this caller


def board(c: Container, p: Principal, as_of: dt.date | None = None,
          metrics: tuple[str, ...] = HEADLINE) -> Board:
    """``metrics`` by month over the 12 months to ``as_of`` (default: the tenant's today) for
    ``p``; a tenant-wide figure is refused to a scoped caller, and said why, not raised."""
    cat = catalog_of(c, tenant_of(p))
    refused = {}
    for name in metrics:
        why = refusal(cat, cat.metric(name), p)
        if why:
            refused[name] = why
    start, end = span(c, as_of)
    shown = [m for m in metrics if m not in refused]
    got = answers(c, p, shown, grain="month", start=start, end=end) if shown else []
    return Board(start, end, got, refused)
