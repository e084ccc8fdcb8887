"""Hard constraints as one mask over customers × items, applied before ranking.

``refusals`` gives, for each (customer, item) pair, 0 when the item may be offered and
otherwise the code of the *first* rule that refuses it — suitability first, in the order
``core.suitability.judge`` decides (so the reason shown is the one a compliance officer would
give), then consent, validity, the item already held or recently sent, the frequency cap, the
compliance lexicon, and an action's prerequisites. It is numpy broadcasting over a block of
customers, so a million customers × a few hundred items is a few seconds in blocks.

``recheck`` is the guard after ranking: every chosen pair is judged again by
``core.suitability.judge`` — the scalar implementation the sidebar and campaigns use, written
separately — and every disagreement is a violation, counted and exported as a metric. The
exhaustive test (tests/unit/recommend/test_eligibility.py) holds the two equal over every
combination of C-level × R-level × objective × horizon × variety × expiry × professional.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from caifu.core.suitability import (
    C_LEVELS,
    HORIZONS,
    OBJECTIVE_MAX,
    OBJECTIVES,
    VARIETIES,
    Investor,
    judge,
    level_rank,
)
from caifu.recommend.catalogue import EPOCH, Catalogue

# Refusal codes, in the order they are decided (the first that applies is reported).
RULES = ("OK", "NO_ASSESSMENT", "LOWEST_CATEGORY", "ASSESSMENT_EXPIRED", "LEVEL_MISMATCH",
         "OBJECTIVE_MISMATCH", "HORIZON_MISMATCH", "VARIETY_MISMATCH", "NO_CONSENT",
         "NOT_VALID", "HELD", "RECENTLY_SENT", "FREQUENCY_CAP", "COMPLIANCE", "PREREQUISITE",
         "BUSINESS_FILTER")
CODE = {name: i for i, name in enumerate(RULES)}
SUITABILITY_RULES = frozenset(RULES[1:8])
NO_EXPIRY = np.iinfo(np.int32).max
ALL_VARIETIES = (1 << len(VARIETIES)) - 1


CUSTOMER_FIELDS = ("customer_id", "level", "lowest", "valid_until", "professional", "objective",
                   "horizon", "varieties", "varieties_known", "consent")


@dataclass
class Customers:
    """What the mask needs of each customer, as parallel numpy columns (one row a customer).

    ``level`` 0 = never assessed, 1..5 = C1..C5; ``valid_until`` a day number (NO_EXPIRY when
    the assessment states none); ``objective`` 0 = not stated, 1..5 in ``OBJECTIVES`` order;
    ``horizon`` 0 = not recorded, 1..3; ``varieties`` a bit mask over ``VARIETIES`` and
    ``varieties_known`` False when the questionnaire did not ask."""

    customer_id: np.ndarray
    level: np.ndarray
    lowest: np.ndarray
    valid_until: np.ndarray
    professional: np.ndarray
    objective: np.ndarray
    horizon: np.ndarray
    varieties: np.ndarray
    varieties_known: np.ndarray
    consent: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_id)

    def take(self, rows: np.ndarray) -> Customers:
        """The customers at ``rows``, in that order."""
        return Customers(*(getattr(self, f)[rows] for f in CUSTOMER_FIELDS))

    def investor(self, row: int) -> Investor:
        """The same customer as ``core.suitability`` sees him (for ``recheck``)."""
        level = int(self.level[row])
        until = int(self.valid_until[row])
        objective = int(self.objective[row])
        horizon = int(self.horizon[row])
        known = bool(self.varieties_known[row])
        mask = int(self.varieties[row])
        return Investor(
            level=C_LEVELS[level - 1] if level else None,
            valid_until=None if until == NO_EXPIRY else EPOCH + dt.timedelta(days=until),
            no_loss_tolerance=bool(self.lowest[row]), no_civil_capacity=False,
            objective=OBJECTIVES[objective - 1] if objective else None,
            professional=bool(self.professional[row]),
            horizon=HORIZONS[horizon - 1] if horizon else None,
            varieties=frozenset(v for i, v in enumerate(VARIETIES) if mask >> i & 1)
            if known else None)


def variety_bits(chosen: frozenset[str]) -> int:
    """The varieties an investor chose as the mask's bit set (bit i: ``VARIETIES[i]``)."""
    return sum(1 << VARIETIES.index(v) for v in chosen)


def customers_from_investors(ids: list[str], investors: list[Investor],
                             consent: list[bool]) -> Customers:
    """Columns from ``Investor`` records (how services and tests build them)."""
    n = len(ids)
    level = np.zeros(n, np.int8)
    lowest = np.zeros(n, bool)
    until = np.full(n, NO_EXPIRY, np.int32)
    prof = np.zeros(n, bool)
    objective = np.zeros(n, np.int8)
    horizon = np.zeros(n, np.int8)
    varieties = np.zeros(n, np.int16)
    known = np.zeros(n, bool)
    for i, inv in enumerate(investors):
        level[i] = level_rank(inv.level) if inv.level else 0
        lowest[i] = inv.lowest_category
        if inv.valid_until is not None:
            until[i] = (inv.valid_until - EPOCH).days
        prof[i] = inv.professional
        objective[i] = OBJECTIVES.index(inv.objective) + 1 if inv.objective in OBJECTIVE_MAX else 0
        horizon[i] = HORIZONS.index(inv.horizon) + 1 if inv.horizon in HORIZONS else 0
        if inv.varieties is not None:
            known[i] = True
            varieties[i] = variety_bits(inv.varieties)
    return Customers(np.asarray(ids, dtype=object), level, lowest, until, prof, objective,
                     horizon, varieties, known, np.asarray(consent, bool))


# Bit fields of ``answers``: (name, width). Each column is checked to fit its field, so two
# customers with different answers can never share a key (and a verdict).
_ANSWER_BITS = (("level", 3), ("lowest", 1), ("expired", 1), ("professional", 1),
                ("objective", 3), ("horizon", 2), ("varieties", 16), ("varieties_known", 1))
ANSWER_WIDTH = sum(w for _, w in _ANSWER_BITS)


def answers(cust: Customers, rows: np.ndarray, day: int) -> np.ndarray:
    """Everything ``judge`` reads of each customer on ``day``, packed into one int64: C-level,
    lowest category, expired or not, professional, objective, horizon, varieties and whether
    they were asked. Customers with equal answers get equal verdicts for equal products, so
    the mask and the re-check decide once per distinct answers, not once per customer."""
    cols = {"level": cust.level[rows], "lowest": cust.lowest[rows],
            "expired": cust.valid_until[rows] < day, "professional": cust.professional[rows],
            "objective": cust.objective[rows], "horizon": cust.horizon[rows],
            "varieties": cust.varieties[rows], "varieties_known": cust.varieties_known[rows]}
    key = np.zeros(len(rows), np.int64)
    shift = 0
    for name, width in _ANSWER_BITS:
        col = cols[name].astype(np.int64)
        if len(col) and (col.min() < 0 or col.max() >= 1 << width):
            raise ValueError(f"customer column {name} outside 0..{(1 << width) - 1}")
        key |= col << shift
        shift += width
    return key


def product_key(cat: Catalogue) -> np.ndarray:
    """Everything ``judge`` reads of each item — R-level, horizon, variety — as one int64 of
    8 bits (its verdicts are those of any item with the same three)."""
    return (cat.risk.astype(np.int64) | cat.horizon.astype(np.int64) << 3
            | (cat.variety.astype(np.int64) + 1) << 5)


# the highest R-level each objective admits, indexed by the objective code (0: not stated)
_OBJECTIVE_CAP = np.array([5] + [level_rank(OBJECTIVE_MAX[o]) for o in OBJECTIVES], np.int8)


def suitability_refusals(cust: Customers, cat: Catalogue, today: int) -> np.ndarray:
    """The first suitability rule refusing each pair (uint8, 0 = suitable): the vectorised
    twin of ``core.suitability.judge``, rule for rule."""
    c = cust.level.astype(np.int16)[:, None]
    r = cat.risk.astype(np.int16)[None, :]
    ph = cat.horizon.astype(np.int16)[None, :]
    pv = cat.variety.astype(np.int16)[None, :]
    own_h = np.maximum(cust.horizon, 1).astype(np.int16)[:, None]  # not recorded: short
    cap = _OBJECTIVE_CAP[cust.objective].astype(np.int16)[:, None]
    has_bit = (cust.varieties.astype(np.int32)[:, None] >> np.maximum(pv, 0)) & 1
    checks = (
        ("VARIETY_MISMATCH", (pv >= 0) & cust.varieties_known[:, None] & (has_bit == 0)),
        ("HORIZON_MISMATCH", (ph > 1) & (ph > own_h)),
        ("OBJECTIVE_MISMATCH", r > cap),
        ("LEVEL_MISMATCH", (r > c) & ~cust.professional[:, None]),
        ("ASSESSMENT_EXPIRED", np.broadcast_to((cust.valid_until < today)[:, None],
                                               (len(cust), len(cat)))),
        ("LOWEST_CATEGORY", (cust.lowest & (cust.level == 1))[:, None] & (r > 1)),
        ("NO_ASSESSMENT", np.broadcast_to((cust.level == 0)[:, None], (len(cust), len(cat)))),
    )
    out = np.zeros((len(cust), len(cat)), np.uint8)
    for name, hit in checks:  # later assignments win: the first rule in judge's order last
        out[hit] = CODE[name]
    return out


@dataclass
class Exclusions:
    """Per-pair facts from the system of record, as (customer row, item row) index arrays."""

    held: tuple[np.ndarray, np.ndarray]  # holds the fund / has the permission already
    recently_sent: tuple[np.ndarray, np.ndarray]  # sent within the resend window
    prerequisite_unmet: tuple[np.ndarray, np.ndarray]  # an action's requirement fails
    capped: np.ndarray  # bool per customer: the frequency cap is reached

    @staticmethod
    def none(n_customers: int) -> Exclusions:
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        return Exclusions(empty, empty, empty, np.zeros(n_customers, bool))

    def rows(self, start: int, stop: int) -> Exclusions:
        """The exclusions of customers ``start:stop``, renumbered from 0."""
        def cut(pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            keep = (pair[0] >= start) & (pair[0] < stop)
            return pair[0][keep] - start, pair[1][keep]
        return Exclusions(cut(self.held), cut(self.recently_sent),
                          cut(self.prerequisite_unmet), self.capped[start:stop])

    def take(self, rows: np.ndarray, n_customers: int) -> Exclusions:
        """The exclusions of customers ``rows`` (any order), renumbered to their positions."""
        pos = np.full(n_customers, -1, np.int64)
        pos[rows] = np.arange(len(rows))

        def cut(pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            p = pos[pair[0]]
            return p[p >= 0], pair[1][p >= 0]
        return Exclusions(cut(self.held), cut(self.recently_sent),
                          cut(self.prerequisite_unmet), self.capped[rows])


def refusals(cust: Customers, cat: Catalogue, today: dt.date, excl: Exclusions,
             filtered: np.ndarray | None = None) -> np.ndarray:
    """Every hard constraint: the first refusing rule per (customer, item), 0 = eligible.
    ``filtered``: items a tenant's business rule filters out (bool per item)."""
    day = (today - EPOCH).days
    out = suitability_refusals(cust, cat, day)
    free = out == 0
    later: list[tuple[str, np.ndarray]] = [
        ("NO_CONSENT", np.broadcast_to(~cust.consent[:, None], out.shape)),
        ("NOT_VALID", np.broadcast_to(~cat.valid_on(day)[None, :], out.shape)),
    ]
    for name, hit in later:
        out[free & hit] = CODE[name]
        free = out == 0
    for name, (ci, ii) in (("HELD", excl.held), ("RECENTLY_SENT", excl.recently_sent)):
        sel = free[ci, ii]
        out[ci[sel], ii[sel]] = CODE[name]
        free = out == 0
    out[free & excl.capped[:, None]] = CODE["FREQUENCY_CAP"]
    free = out == 0
    out[free & ~cat.compliance_ok[None, :]] = CODE["COMPLIANCE"]
    free = out == 0
    ci, ii = excl.prerequisite_unmet
    sel = free[ci, ii]
    out[ci[sel], ii[sel]] = CODE["PREREQUISITE"]
    if filtered is not None:
        free = out == 0
        out[free & filtered[None, :]] = CODE["BUSINESS_FILTER"]
    return out


class Mask:
    """``refusals(...) == 0`` for any rows of ``cust`` — the same mask, made fast enough for a
    million customers a block at a time and for one customer in the sidebar: the suitability
    rules run once per distinct ``answers`` (a few thousand among a million customers) and
    are gathered; consent, the frequency cap, validity, the compliance flag and the tenant's
    filter are vectors; the pair facts (held, recently sent, prerequisite unmet) are sorted by
    customer once and sliced. The unit tests hold it equal to ``refusals``."""

    def __init__(self, cust: Customers, cat: Catalogue, today: dt.date, excl: Exclusions,
                 filtered: np.ndarray | None = None) -> None:
        day = (today - EPOCH).days
        _, first, combo = np.unique(answers(cust, np.arange(len(cust)), day),
                                    return_index=True, return_inverse=True)
        self._combo = combo.ravel()
        self._suitable: np.ndarray = suitability_refusals(cust.take(first), cat, day) == 0
        self._customer_ok = cust.consent & ~excl.capped
        self._item_ok = cat.valid_on(day) & cat.compliance_ok
        if filtered is not None:
            self._item_ok &= ~filtered
        facts = (excl.held, excl.recently_sent, excl.prerequisite_unmet)
        c = np.concatenate([f[0] for f in facts]).astype(np.int64)
        i = np.concatenate([f[1] for f in facts]).astype(np.int64)
        order = np.argsort(c, kind="stable")
        self._pair_c, self._pair_i = c[order], i[order]

    def of(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), items) bool, True where nothing refuses the pair."""
        rows = np.asarray(rows, np.int64)
        ok: np.ndarray = self._suitable[self._combo[rows]]
        ok &= self._customer_ok[rows, None]
        ok &= self._item_ok[None, :]
        if len(rows) == 0:
            return ok
        if rows[-1] - rows[0] == len(rows) - 1 and (np.diff(rows) == 1).all():
            lo, hi = np.searchsorted(self._pair_c, [rows[0], rows[-1] + 1])
            ok[self._pair_c[lo:hi] - rows[0], self._pair_i[lo:hi]] = False
        else:
            pos = np.full(len(self._combo), -1, np.int64)
            pos[rows] = np.arange(len(rows))
            at = pos[self._pair_c]
            ok[at[at >= 0], self._pair_i[at >= 0]] = False
        return ok


@dataclass
class Recheck:
    checked: int
    violations: int
    examples: list[dict[str, str]]


def recheck(cust: Customers, cat: Catalogue, today: dt.date, rows: np.ndarray,
            items: np.ndarray, max_examples: int = 20,
            memo: dict[int, str | None] | None = None) -> Recheck:
    """Judge every chosen (customer row, item row) again with ``core.suitability.judge``;
    a pair it does not find suitable is a violation (and so is a non-consenting customer or an
    item outside its validity). Returns the count and the first few, for the log.

    ``judge`` sees of a pair only the customer's answers (``answers``) and the item's R-level,
    horizon and variety (``product_key``), so it runs once per distinct (answers, consent,
    product) — a few thousand calls for ten million pairs — and every pair takes its
    combination's verdict; the item's validity is checked per pair. ``memo`` (the problem
    per combination, None = suitable) carries verdicts from block to block of one batch."""
    day = (today - EPOCH).days
    rows = np.asarray(rows, np.int64)
    items = np.asarray(items, np.int64)
    if len(rows) == 0:
        return Recheck(0, 0, [])
    memo = {} if memo is None else memo
    keys = (((answers(cust, rows, day) << 1) | cust.consent[rows].astype(np.int64)) << 8
            | product_key(cat)[items])
    combos, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    problems: list[str | None] = []
    for j, key in enumerate(combos.tolist()):
        if key not in memo:
            memo[key] = _judged(cust, cat, today, int(rows[first[j]]), int(items[first[j]]))
        problems.append(memo[key])
    inverse = inverse.ravel()
    refused = np.array([p is not None for p in problems])[inverse]
    bad = refused | ~cat.valid_on(day)[items]
    examples = [{"customer_id": str(cust.customer_id[rows[j]]),
                 "item_id": str(cat.item_id[items[j]]),
                 "rule": str(problems[inverse[j]]) if refused[j] else "NOT_VALID"}
                for j in np.flatnonzero(bad)[:max_examples]]
    return Recheck(len(rows), int(bad.sum()), examples)


def _judged(cust: Customers, cat: Catalogue, today: dt.date, r: int, i: int) -> str | None:
    """The rule refusing customer row ``r`` item ``i`` by ``judge``, then consent; None when
    suitable."""
    verdict = judge(cust.investor(r), cat.level(i), today, horizon=cat.horizon_name(i),
                    variety=cat.variety_name(i))
    if not verdict.may_recommend:
        return verdict.rule
    return None if cust.consent[r] else "NO_CONSENT"
