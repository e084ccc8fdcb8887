"""What the demo broker's customers and advisors say: lines of the labelled corpus's train split.

The demo's chats are not written by caifu. Every text message is a verbatim snippet of the
labelled corpus (``caifu/data/text/corpus``, real text from public pages; see its README) whose
page falls in the **train** split (``caifu.data.corpus_split``), or two such snippets with the
same labels joined by a comma. Dev and test stay unseen, so measuring the tagger on them means
something; the demo's own figures are on text the model was trained on, and say so.

A scenario (what the generator decides a customer wants from his traits: open ChiNext, redeem
the fund he holds, complain after a loss …) is a pool of train lines chosen **by their
labels**, and the labels of the line drawn are the message's ground truth
(``_ground_truth/chat_labels.parquet``). The pools:

==================  ====================================================================
scenario            customer lines whose labels …
==================  ====================================================================
open_chinext        interests ∋ chinext and intents ∋ open_permission
chinext_question    interests ∋ chinext, no open_permission (a ChiNext rule question)
open_permission     intents ∋ open_permission, not chinext (STAR, BSE, margin, options …)
level2              intents ∋ level2
redeem              intents ∋ redeem
add                 intents ∋ add_position
reduce              intents ∋ reduce_position
transfer_out        intents ∋ transfer_out
open_account        intents ∋ open_account
fee                 intents ∋ fee_complaint
complaint           emotions ∩ {complaint, anger}
loss_anxiety        emotions ∋ loss_anxiety
relief              emotions ∩ {relief, positive}
market              interests ≠ ∅, intents ⊆ {consult}, no emotion
chatter             no label in any family
==================  ====================================================================

Advisor lines: ``violation`` (violations ≠ ∅) and ``reply`` (no violation: answers, risk
warnings, disclaimers, product descriptions — many name 保本 or 收益 without promising).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

from caifu.data.corpus_split import split_of

__all__ = ["ADVISOR_POOLS", "CUSTOMER_POOLS", "FAMILIES", "Line", "join", "pools"]

FAMILIES = ("interests", "intents", "emotions", "violations")


@dataclass(frozen=True)
class Line:
    id: str
    text: str
    traditional: bool
    labels: dict[str, tuple[str, ...]]

    @property
    def key(self) -> tuple[tuple[str, ...], ...]:
        return tuple(self.labels[f] for f in FAMILIES)


Labels = dict[str, tuple[str, ...]]


def _has(family: str, *labels: str) -> Callable[[Labels], bool]:
    return lambda lb: bool(set(lb[family]) & set(labels))


CUSTOMER_POOLS: dict[str, Callable[[Labels], bool]] = {
    "open_chinext": lambda lb: "chinext" in lb["interests"] and "open_permission" in lb["intents"],
    "chinext_question": lambda lb: ("chinext" in lb["interests"]
                                    and "open_permission" not in lb["intents"]),
    "open_permission": lambda lb: ("open_permission" in lb["intents"]
                                   and "chinext" not in lb["interests"]),
    "level2": _has("intents", "level2"),
    "redeem": _has("intents", "redeem"),
    "add": _has("intents", "add_position"),
    "reduce": _has("intents", "reduce_position"),
    "transfer_out": _has("intents", "transfer_out"),
    "open_account": _has("intents", "open_account"),
    "fee": _has("intents", "fee_complaint"),
    "complaint": _has("emotions", "complaint", "anger"),
    "loss_anxiety": _has("emotions", "loss_anxiety"),
    "relief": _has("emotions", "relief", "positive"),
    "market": lambda lb: (bool(lb["interests"]) and set(lb["intents"]) <= {"consult"}
                          and not lb["emotions"]),
    "chatter": lambda lb: not any(lb[f] for f in FAMILIES),
}
ADVISOR_POOLS: dict[str, Callable[[Labels], bool]] = {
    "violation": lambda lb: bool(lb["violations"]),
    "reply": lambda lb: not lb["violations"],
}


@lru_cache(maxsize=1)
def _train_lines() -> dict[str, tuple[Line, ...]]:
    """Train-split lines by side, in file and line order (so the demo is deterministic)."""
    folder = files("caifu.data").joinpath("text", "corpus")
    out: dict[str, list[Line]] = {"customer": [], "advisor": []}
    for path in sorted((p for p in folder.iterdir() if p.name.endswith(".jsonl")),
                       key=lambda p: p.name):
        for raw in path.read_text("utf-8").splitlines():
            if not raw.strip():
                continue
            row: dict[str, Any] = json.loads(raw)
            if split_of(row["url"]) != "train":
                continue
            labels = {f: tuple(sorted(row["labels"][f])) for f in FAMILIES}
            out[row["side"]].append(Line(row["id"], row["text"],
                                         row["script"] == "traditional", labels))
    return {side: tuple(lines) for side, lines in out.items()}


@lru_cache(maxsize=1)
def pools() -> dict[str, tuple[Line, ...]]:
    """Scenario → its train lines (customer and advisor scenarios in one mapping)."""
    lines = _train_lines()
    out = {name: tuple(x for x in lines["customer"] if keep(x.labels))
           for name, keep in CUSTOMER_POOLS.items()}
    out |= {f"advisor_{name}": tuple(x for x in lines["advisor"] if keep(x.labels))
            for name, keep in ADVISOR_POOLS.items()}
    empty = [name for name, pool in out.items() if not pool]
    if empty:
        raise RuntimeError(f"the corpus's train split has no line for demo scenario(s) {empty}")
    return out


def join(first: Line, pool: tuple[Line, ...], u: float) -> tuple[str, tuple[Line, ...]]:
    """``first`` joined with another line of ``pool`` with the same labels (chosen by ``u``),
    or ``first`` alone when it has no such partner."""
    mates = [x for x in pool if x.key == first.key and x.id != first.id]
    if not mates:
        return first.text, (first,)
    second = mates[int(u * len(mates))]
    sep = "" if first.text[-1:] in "。！？!?…~，," else "，"
    return first.text + sep + second.text, (first, second)
