"""What became of a recommendation shown (``recommendation_log``), each stamped the first
time only:

    sent        the advisor sent it into the chat from the sidebar (audited ``recommend_send``)
    dismissed   the advisor dismissed it on the sidebar (audited ``recommend_dismiss``)
    opened      the customer followed the tracking link in the sent text (``GET /t/{token}``,
    clicked     through ``services/scrm/funnel.record_hit``, as a campaign's link is;
                a campaign send's row shares its contact's token, and the hit stamps both)
    converted   ``caifu recommend outcomes -t T``: he took the item up within the attribution
                window after it was shown — read the content, bought the fund, opened the
                permission or service — in the interaction log (``recommend/interactions``)

Conversion is by day, as the interaction log is: an uptake counts from the day the item was
shown (UTC) to ``window`` days later, and is timed at the later of its day's midnight and the
showing — as a campaign attributes a date-only fact (``scrm.campaigns.attribute``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection

from caifu.adapters.sor.repos import recommend as repo
from caifu.core.errors import ConfigError, NotFoundError
from caifu.core.identity import Principal
from caifu.recommend.catalogue import CONTENT, EPOCH
from caifu.recommend.interactions import CONVERTED, VIEWED
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.platform import access

AUDITED = {"sent": "recommend_send", "dismissed": "recommend_dismiss"}
WINDOW_DAYS = 14


def mark(c: Container, p: Principal, customer_id: str, rec_id: str, outcome: str) -> bool:
    """The advisor sent or dismissed a recommendation shown for ``customer_id`` (audited
    before it is stamped). True when this call stamped it, False when it already was;
    NotFoundError for a recommendation of another customer or tenant, or none."""
    if outcome not in AUDITED:
        raise ConfigError(f"an advisor's outcome is one of {', '.join(AUDITED)}, not {outcome!r}")
    tenant = access.tenant_of(p)
    with c.engine.connect() as conn:
        row = repo.shown(conn, tenant, rec_id)
    if row is None or row.customer_id != customer_id:
        raise NotFoundError(f"no recommendation {rec_id!r}")
    audit.append(c, tenant, p.subject, AUDITED[outcome], customer_ids=[customer_id],
                 reason=f"推荐 {row.item_id}（{rec_id}）：{'已发送' if outcome == 'sent' else '不合适'}")
    with c.engine.begin() as conn:
        return repo.mark(conn, tenant, rec_id, outcome, c.clock.now())


def record_hit(c: Container, token: str, kind: str, on: dt.datetime | None = None
               ) -> str | None:
    """A recommendation's tracking link visited: ``open`` marks opened, ``click`` opened and
    clicked (the first time each). The content URL to redirect to, or None for an unknown
    token or a URL that is not http(s)."""
    if not token or len(token) > 32 or kind not in ("open", "click"):
        return None
    on = on or c.clock.now()
    with c.engine.begin() as conn:
        row = repo.by_token(conn, token)
        if row is None:
            return None
        content = repo.content_rows(conn, row.tenant_id, [row.item_id]).get(row.item_id)
        url = str(content.url or "") if content is not None else ""
        if not url.startswith(("https://", "http://")):
            return None
        stamp_hit(conn, row.tenant_id, row.rec_id, kind, on)
    return url


def stamp_hit(conn: Connection, tenant: str, rec_id: str, kind: str, on: dt.datetime) -> None:
    """``open``: opened; ``click``: opened and clicked — each the first time only (in the
    caller's transaction: a campaign's hit stamps its contact and its logged row together)."""
    repo.mark(conn, tenant, rec_id, "opened", on)
    if kind == "click":
        repo.mark(conn, tenant, rec_id, "clicked", on)


@dataclass
class Conversions:
    tenant: str
    window: int
    newest: dt.date | None  # the newest day of the interaction log
    checked: int  # logged recommendations still open to conversion
    converted: int


def convert(c: Container, tenant: str, window: int = WINDOW_DAYS,
            progress: Callable[[str], None] = lambda _m: None) -> Conversions:
    """Stamp ``converted_at`` on every logged recommendation whose customer took the item up
    within ``window`` days of its showing: content read (any interaction), a fund bought or
    an action taken (a conversion)."""
    if not 1 <= window <= 365:
        raise ConfigError(f"the attribution window is 1 to 365 days (got {window})")
    from caifu.services.recommend import inputs as rin  # LightGBM comes with it: a job's

    config, _ = rin.load_config(c, tenant)
    progress("reading the interaction log")
    data = rin.read(c, tenant, config)
    inter, cat = data.interactions, data.cat
    if not len(inter):
        return Conversions(tenant, window, None, 0, 0)
    newest = EPOCH + dt.timedelta(days=int(inter.day.max()))
    since = min(c.clock.now(), dt.datetime.combine(newest, dt.time())) - dt.timedelta(days=window)
    with c.engine.connect() as conn:
        rows = repo.unconverted(conn, tenant, since)
    progress(f"matching {len(rows):,} recommendations")
    wanted = {r.customer_id for r in rows}
    took = np.isin(inter.customer_id, list(wanted)) & np.where(
        cat.item_type[inter.item] == CONTENT, inter.grade >= VIEWED, inter.grade >= CONVERTED)
    days: dict[tuple[str, int], list[int]] = {}
    for cid, item, day in zip(inter.customer_id[took].tolist(), inter.item[took].tolist(),
                              inter.day[took].tolist(), strict=True):
        days.setdefault((cid, item), []).append(day)
    found = []
    for r in rows:
        item = cat.index.get(r.item_id)
        first = (r.shown_at.date() - EPOCH).days
        hits = [d for d in days.get((r.customer_id, item if item is not None else -1), [])
                if first <= d <= first + window]
        if hits:
            day = EPOCH + dt.timedelta(days=min(hits))
            found.append((r.rec_id, max(r.shown_at, dt.datetime.combine(day, dt.time()))))
    with c.engine.begin() as conn:
        repo.mark_converted(conn, tenant, found)
    return Conversions(tenant, window, newest, len(rows), len(found))
