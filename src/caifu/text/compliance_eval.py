"""How well a compliance lexicon does: precision and recall on the hand-labelled chat lines
shipped beside the default lexicon (``caifu/data/compliance/labelled_sample.jsonl``).

    evaluate(default_lexicon(), labelled_sample())
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib.resources import files
from typing import Any

from caifu.text.compliance import Lexicon


def labelled_sample() -> list[dict[str, Any]]:
    """The hand-labelled chat lines shipped beside the default lexicon."""
    raw = (files("caifu.data") / "compliance" / "labelled_sample.jsonl").read_text("utf-8")
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def _scores(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    # Nothing predicted is vacuously precise; nothing to find is vacuously recalled.
    return {"precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0, "tp": tp, "fp": fp, "fn": fn}


def evaluate(lexicon: Lexicon, samples: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Precision and recall per (message, category): advisor ``review`` findings against the
    labels, per category, and separately the customer-side ``alert``s."""
    counts: dict[str, list[int]] = {}
    alerts = [0, 0, 0]
    for sample in samples:
        sender = sample["sender"]
        expected = set(sample.get("labels", ()))
        found = {f.category for f in lexicon.check(sample["text"], sender)
                 if f.action in ("review", "alert")}
        if sender == "customer":
            expected &= {c for c, v in lexicon.categories.items() if v.customer == "alert"}
        for cid in expected | found:
            slot = alerts if sender == "customer" else counts.setdefault(cid, [0, 0, 0])
            slot[0 if cid in expected and cid in found else 1 if cid in found else 2] += 1
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    return {**_scores(tp, fp, fn),
            "per_category": {c: _scores(*counts[c]) for c in sorted(counts)},
            "customer_alerts": _scores(*alerts)}
