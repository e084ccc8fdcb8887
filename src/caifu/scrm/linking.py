"""Identity linking: which broker customer is this WeCom external contact?

An external contact (``external_userid``) arrives with a few facts — the WeChat ``unionid``,
the mobiles the advisor typed into the remark, the remark and nickname, the advisors who
follow him. The service looks up the customers those facts could point at; this module
weighs the evidence and decides, without touching storage:

| evidence | strength | meaning |
|---|---|---|
| ``unionid`` | strong | the same WeChat user is already linked to this customer (another follow) |
| ``mobile`` | strong | a remark mobile equals the customer's mobile on record |
| ``name_advisor`` | weak | remark or nickname equals the customer's name, and he is this advisor's |
| ``name`` | weak | remark or nickname equals the customer's name only |

Decision:

- **link** — strong evidence, and every kind of strong evidence names the same single
  customer (a mobile shared by two customers, or a mobile saying A while the unionid says B,
  is a conflict, not a link);
- **review** — weak evidence only, or conflicting evidence: each candidate goes to the review
  queue, nothing is merged;
- **none** — no evidence at all.

A strong unique link is not undone by a bare namesake elsewhere (``张伟`` is not evidence
against a matching mobile), but a namesake *of the same advisor* is: the advisor may have
typed another customer's name, so a person decides.

Pairs a reviewer rejected or unlinked (``declined``) are never proposed again automatically;
an existing link to another customer (``current``) is never replaced automatically — the new
candidate goes to review instead. Every evidence item carries only a masked value: the
evidence is stored, and stored evidence must not become a copy of the customer master.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from caifu.core.levels import mask_mobile, mask_name, mask_text

Kind = Literal["unionid", "mobile", "name_advisor", "name"]
Outcome = Literal["link", "review", "none"]

WEIGHT: Final[dict[str, float]] = {"unionid": 0.9, "mobile": 0.9, "name_advisor": 0.5,
                                   "name": 0.3}
STRONG: Final = frozenset({"unionid", "mobile"})
# more namesakes than this is no evidence at all: a review queue of ten 张伟 helps nobody
MAX_NAME_CANDIDATES: Final = 3
_MOBILE = re.compile(r"(?:\+?86)?(1[3-9]\d{9})", re.ASCII)


def mobile_key(value: str | None) -> str | None:
    """The 11 digits of a mainland mobile (``+86``, blanks and hyphens dropped), else None."""
    if not value:
        return None
    m = _MOBILE.fullmatch(re.sub(r"[\s\-]", "", value))
    return m.group(1) if m else None


def mask_unionid(value: str) -> str:
    """First 4 and last 2 characters: enough to tell two unionids apart in a review."""
    value = value.strip()
    return mask_text(value) if len(value) <= 8 else value[:4] + "*" * (len(value) - 6) + value[-2:]


@dataclass(frozen=True)
class ContactFacts:
    """What WeCom (or the follow rows) says about one external contact."""

    external_userid: str
    advisor_ids: tuple[str, ...] = ()
    unionid: str | None = None
    remark_mobiles: tuple[str, ...] = ()
    remark: str | None = None
    name: str | None = None

    def mobiles(self) -> set[str]:
        return {k for k in (mobile_key(m) for m in self.remark_mobiles) if k}

    def names(self) -> set[str]:
        return {n.strip() for n in (self.remark, self.name) if n and n.strip()}


@dataclass(frozen=True)
class CustomerRef:
    """A candidate customer, as the service loaded it."""

    customer_id: str
    name: str | None = None
    mobile: str | None = None
    advisor_id: str | None = None


@dataclass(frozen=True)
class Evidence:
    kind: Kind
    strength: Literal["strong", "weak"]
    customer_id: str
    value: str  # masked

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "strength": self.strength, "value": self.value}


@dataclass(frozen=True)
class Candidate:
    customer_id: str
    evidence: tuple[Evidence, ...]

    @property
    def score(self) -> float:
        miss = 1.0
        for kind in {e.kind for e in self.evidence}:
            miss *= 1.0 - WEIGHT[kind]
        return round(1.0 - miss, 4)


@dataclass(frozen=True)
class LinkDecision:
    external_userid: str
    outcome: Outcome
    customer_id: str | None  # the customer linked (outcome link)
    candidates: tuple[Candidate, ...]  # the linked one, or those to review
    reason: str
    ignored: tuple[Evidence, ...] = field(default=())  # declined pairs, namesakes elsewhere


def evidence_for(facts: ContactFacts, customers: Iterable[CustomerRef],
                 unionid_customers: Collection[str]) -> list[Evidence]:
    """Every piece of evidence the facts give for each candidate customer."""
    out: list[Evidence] = []
    if facts.unionid:
        masked = mask_unionid(facts.unionid)
        out += [Evidence("unionid", "strong", cid, masked) for cid in sorted(set(unionid_customers))]
    mobiles, names = facts.mobiles(), facts.names()
    advisors = set(facts.advisor_ids)
    name_hits: list[Evidence] = []
    for cust in sorted(customers, key=lambda x: x.customer_id):
        key = mobile_key(cust.mobile)
        if key is not None and key in mobiles:
            out.append(Evidence("mobile", "strong", cust.customer_id, mask_mobile(key)))
        if cust.name and cust.name.strip() in names:
            same_advisor = cust.advisor_id is not None and cust.advisor_id in advisors
            name_hits.append(Evidence("name_advisor" if same_advisor else "name", "weak",
                                      cust.customer_id, mask_name(cust.name)))
    plain = [e for e in name_hits if e.kind == "name"]
    if len(plain) > MAX_NAME_CANDIDATES:  # a common name: only the advisor's own count
        name_hits = [e for e in name_hits if e.kind == "name_advisor"]
    return out + name_hits


def decide(facts: ContactFacts, customers: Iterable[CustomerRef],
           unionid_customers: Collection[str] = (), *, current: str | None = None,
           declined: Collection[str] = ()) -> LinkDecision:
    """Weigh the evidence for one contact and say link, review or none (see module doc)."""
    every = evidence_for(facts, customers, unionid_customers)
    ignored = [e for e in every if e.customer_id in declined]
    evidence = [e for e in every if e.customer_id not in declined]
    by_customer: dict[str, list[Evidence]] = {}
    for e in evidence:
        by_customer.setdefault(e.customer_id, []).append(e)

    def cands(ids: Iterable[str]) -> tuple[Candidate, ...]:
        return tuple(Candidate(cid, tuple(by_customer[cid])) for cid in sorted(set(ids)))

    def result(outcome: Outcome, ids: Iterable[str], reason: str,
               extra_ignored: Sequence[Evidence] = ()) -> LinkDecision:
        return LinkDecision(facts.external_userid, outcome, None, cands(ids), reason,
                            tuple(ignored) + tuple(extra_ignored))

    strong_by_kind: dict[str, set[str]] = {}
    for e in evidence:
        if e.strength == "strong":
            strong_by_kind.setdefault(e.kind, set()).add(e.customer_id)
    strong = set().union(*strong_by_kind.values()) if strong_by_kind else set()
    advisor_names = {e.customer_id for e in evidence if e.kind == "name_advisor"}
    if not evidence:
        why = "no evidence" if not ignored else "only evidence for pairs a reviewer declined"
        return result("none", [], why)
    if not strong:
        return result("review", by_customer, "weak evidence only (name): a person decides")
    if len(strong) > 1:
        kinds = ", ".join(f"{k} → {', '.join(sorted(v))}" for k, v in sorted(strong_by_kind.items()))
        return result("review", strong | advisor_names, f"conflicting strong evidence ({kinds})")
    (only,) = strong
    rivals = advisor_names - {only}
    if rivals:
        return result("review", {only} | rivals,
                      "strong evidence for one customer, but the advisor's namesake is another")
    namesakes = [e for e in evidence if e.customer_id != only]
    if current is not None and current != only:
        return result("review", {only}, f"already linked to {current}: a person decides",
                      namesakes)
    kinds = " + ".join(sorted(strong_by_kind))
    return LinkDecision(facts.external_userid, "link", only,
                        (Candidate(only, tuple(by_customer[only])),),
                        f"unique strong evidence ({kinds})", tuple(ignored + namesakes))
