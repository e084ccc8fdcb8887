"""The demo's risk replay: real headlines from the risk corpus's train split, about companies
the demo's customers hold, sent through intake at the demo's dates and taken down the whole
path a new story takes (link → event classifier → alerts and advisor tasks).

    corpus train split ──► lines naming listed codes (the labels' codes)
        └─► held: codes some customer holds today, directly or through a fund's latest
            disclosed top holdings (services/risk/exposure.exposed — the alerts' own query),
            that the tenant's linker finds in the line too (a line whose held company the
            linker misses would show nothing; the misses are counted and printed, and
            measured by ``caifu risk evaluate``)
              └─► choose: the first line (by id) of each risk event type, up to RISKS, and the
                  first NONES lines labelled ``none`` and neutral (a routine notice, a
                  denial): nothing should be raised for those
                    └─► one intake batch (source ``demo-replay``, the corpus URL, published
                        on the demo's last weeks in the tenant's zone)
                          └─► process_stories → alerts and tasks

The choice is made when the demo runs, from the corpus and the broker's holdings, so it
follows both; the same corpus and broker give the same lines. Replaying again raises nothing
new: intake keeps each line once (same URL and text is a duplicate) and a story seen again is
a repeat for exposure.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from caifu.adapters.sor.repos import risk as repo
from caifu.adapters.sor.risk_models import risk_documents
from caifu.risk.corpus import NewsItem, load_news_corpus
from caifu.services.container import Container
from caifu.services.risk.events import StoryOutcome, process_stories
from caifu.services.risk.exposure import exposed
from caifu.services.risk.intake import Intake, IntakeReport
from caifu.services.risk.linking import companies_of, tenant_linker

SOURCE = "demo-replay"
RISKS = 8  # lines with a risk event, one per event type
NONES = 2  # lines labelled none: a routine notice or a denial raises nothing
MAX_CODES = 3  # a line naming more companies makes an unreadable demo row
SPREAD_DAYS = 28  # published over the demo's last four weeks
AT = dt.time(9, 30)  # local time of day the replayed lines are published at


@dataclass
class ReplayedLine:
    item: NewsItem
    published: str  # as sent: local time in the tenant's zone
    fold: str = ""  # first | exact | near | duplicate (a replay already taken in)
    story_id: str | None = None
    outcome: StoryOutcome | None = None
    holders: int = 0  # (customer, security) pairs holding a linked company, raised or not
    linked: list[tuple[str, str]] = field(default_factory=list)  # (code, name as written)

    @property
    def unlinked_labels(self) -> list[str]:
        """Codes the corpus labels on the line that the linker did not find."""
        return sorted(self.item.codes - {code for code, _ in self.linked})


@dataclass
class Replay:
    lines: list[ReplayedLine] = field(default_factory=list)
    intake: IntakeReport | None = None
    candidates: int = 0  # train lines naming a held company (by their labels)
    unlinked: int = 0  # of those, lines where the linker finds none of the held ones

    @property
    def new_alerts(self) -> int:
        return sum(x.outcome.new_alerts for x in self.lines if x.outcome)


def choose(items: Sequence[NewsItem], held: set[str],
           linked: Mapping[str, set[str]] | None = None, risks: int = RISKS,
           nones: int = NONES) -> list[NewsItem]:
    """Train-split lines naming a held code (at most ``MAX_CODES`` codes) — one the linker
    finds too when ``linked`` (line id → codes linked) is given: the first of each risk
    event type (by id), up to ``risks`` types, and the first ``nones`` lines labelled
    ``none`` and neutral about one company; sorted by id."""
    picked: list[NewsItem] = []
    types: set[str] = set()
    none_count = 0
    for item in sorted(items, key=lambda i: i.id):
        codes = item.codes
        if item.split != "train" or not codes or len(codes) > MAX_CODES \
                or not codes & held & (codes if linked is None else linked.get(item.id, set())):
            continue
        if item.event_type == "none":
            # neutral, one company: a routine notice or a denial about it (a positive one
            # may be good news about one company beside bad news about another)
            if item.polarity == "neutral" and len(codes) == 1 and none_count < nones:
                picked.append(item)
                none_count += 1
        elif item.polarity == "negative" and item.event_type not in types \
                and len(types) < risks:
            picked.append(item)
            types.add(item.event_type)
    return picked


def held_codes(c: Container, tenant: str, codes: Sequence[str], as_of: dt.date) -> set[str]:
    """Which of ``codes`` some customer holds on ``as_of``, by the route exposure uses."""
    return {r["security_code"] for r in exposed(c, tenant, sorted(set(codes)), as_of)}


def schedule(n: int, end: dt.date) -> list[str]:
    """``n`` publication times (tenant-local, no offset) spread over the ``SPREAD_DAYS``
    days before ``end``, oldest first."""
    if n == 0:
        return []
    step = SPREAD_DAYS / max(n, 1)
    return [f"{end - dt.timedelta(days=SPREAD_DAYS - int(i * step)):%Y-%m-%d} "
            f"{AT:%H:%M}" for i in range(n)]


def replay(c: Container, tenant: str, end: dt.date,
           items: Sequence[NewsItem] | None = None) -> Replay:
    """Choose the lines, take them in as one batch and process their stories."""
    corpus = list(items) if items is not None else list(load_news_corpus().items)
    today = c.clock.now().date()
    train = [i for i in corpus if i.split == "train" and i.codes]
    held = held_codes(c, tenant, [x for i in train for x in i.codes], today)
    using = tenant_linker(c, tenant)
    linked = {i.id: {m["code"] for m in companies_of(i.text, "", end, using)
                     if m["listed"] and m["code"]}
              for i in train if i.codes & held}
    out_of_reach = sum(1 for i in train if i.id in linked and not i.codes & held & linked[i.id])
    chosen = choose(train, held, linked)
    out = Replay([ReplayedLine(i, at) for i, at in zip(chosen, schedule(len(chosen), end),
                                                         strict=True)],
                 candidates=len(linked), unlinked=out_of_reach)
    if not chosen:
        return out
    body = "\n".join(json.dumps({"title": x.item.text, "url": x.item.url,
                                 "published": x.published, "source": SOURCE},
                                ensure_ascii=False) for x in out.lines)
    out.intake = Intake(c).take_body(tenant, body.encode())
    by_line = {d["where"]: d for d in out.intake.documents}
    with c.engine.connect() as conn:
        for n, x in enumerate(out.lines, 1):
            d = by_line.get(f"line {n}")
            if d is None:
                continue  # rejected: the intake report says why
            x.fold, x.story_id = d["fold"], d["story_id"]
            if x.story_id is None:  # a duplicate: the story its first copy went to
                x.story_id = conn.execute(select(risk_documents.c.story_id).where(
                    risk_documents.c.tenant_id == tenant,
                    risk_documents.c.document_id == d["document_id"])).scalar_one()
    story_ids = list(dict.fromkeys(x.story_id for x in out.lines if x.story_id))
    outcomes = {o.story_id: o for o in process_stories(c, tenant, story_ids)}
    with c.engine.connect() as conn:
        stories = {sid: repo.story(conn, tenant, sid) for sid in story_ids}
    for x in out.lines:
        if x.story_id is None:
            continue
        x.outcome = outcomes[x.story_id]
        mentions = json.loads((stories[x.story_id] or {}).get("companies_json") or "[]")
        names: dict[str, str] = {}
        for m in mentions:  # the first mention by name names it; a code form ("600200.SH")
            if m["listed"] and m["code"]:  # only when the line has no other
                shown = names.get(m["code"])
                if shown is None or (shown.isascii() and not m["name"].isascii()):
                    names[m["code"]] = m["name"]
        x.linked = list(names.items())
        x.holders = x.outcome.holders if x.outcome.new_alerts or x.outcome.repeats else \
            len({(r["customer_id"], r["security_code"])
                 for r in exposed(c, tenant, x.outcome.listed, today)})
    return out


def replay_rows(r: Replay) -> list[dict[str, Any]]:
    """The replay as rows for a table: one per line."""
    rows = []
    for x in r.lines:
        o = x.outcome
        rows.append({"id": x.item.id, "text": x.item.text, "url": x.item.url,
                     "published": x.published, "label": x.item.event_type,
                     "story_id": x.story_id, "fold": x.fold,
                     "event_type": o.event_type if o else None,
                     "severity": o.severity if o else None,
                     "codes": o.listed if o else [], "linked": x.linked,
                     "unlinked_labels": x.unlinked_labels, "holders": x.holders,
                     "new_alerts": o.new_alerts if o else 0,
                     "repeats": o.repeats if o else 0})
    return rows
