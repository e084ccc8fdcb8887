"""Scoring the hybrid tagger on a corpus split: what ``caifu text evaluate`` prints and gates on.

``evaluate(tagger, items)`` tags every item with its side's tagger and returns a plain dict:

- ``labels``: per family and label, ``tp fp fn support precision recall f1``;
- ``families``: per family, micro precision/recall/F1 over its labels (``security:``/``fund:``
  entities are left out: the corpus labels no named security);
- ``violation_vs_none``: advisor messages, "any violation" against "none", precision/recall;
- ``scripts``: micro-F1 over every family, simplified and traditional items apart;
- ``confusion``: per family, ``{true: {predicted: n}}`` with ``none`` for an empty side: each
  true label found counts on the diagonal, each missed one against every wrong label
  predicted (or ``none``), each wrong label without a missed one against ``none``;
- ``worst``: the items with the most errors (missed + wrong labels), text and both label sets.

``check(report, recorded, tolerance)`` lists the families whose micro-F1 fell by more than
``tolerance`` below the recorded value (``docs/text-quality.json``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from caifu.text.corpus import CorpusItem
from caifu.text.hybrid import HybridTagger
from caifu.text.taxonomy import FAMILIES

__all__ = ["check", "evaluate"]

WORST = 10


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}


def evaluate(tagger: HybridTagger, items: Sequence[CorpusItem], split: str = "test"
             ) -> dict[str, Any]:
    counts: dict[str, dict[str, Counter[str]]] = {f: defaultdict(Counter) for f in FAMILIES}
    confusion: dict[str, dict[str, Counter[str]]] = {f: defaultdict(Counter) for f in FAMILIES}
    scripts: dict[str, Counter[str]] = defaultdict(Counter)
    binary: Counter[str] = Counter()
    worst: list[tuple[int, str, dict[str, Any]]] = []
    sides = {side: [i for i in items if i.side == side] for side in ("customer", "advisor")}
    for side, group in sides.items():
        if not group:
            continue
        tags = tagger.tag_batch([i.text for i in group], side, evidence=False)
        fams = tagger.taxonomy.families_of(side)  # type: ignore[arg-type]
        for item, t in zip(group, tags, strict=True):
            errors, got = 0, {}
            for fam in fams:
                truth = set(item.labels[fam])
                pred = {x for x in t.labels(fam) if ":" not in x}
                got[fam] = sorted(pred)
                for label in truth | pred:
                    c = counts[fam][label]
                    c["support"] += label in truth
                    c["tp" if label in truth & pred else "fp" if label in pred else "fn"] += 1
                tp, fp, fn = len(truth & pred), len(pred - truth), len(truth - pred)
                scripts[item.script].update({"tp": tp, "fp": fp, "fn": fn})
                errors += fp + fn
                _confuse(confusion[fam], truth, pred)
            if side == "advisor":
                truth_v, pred_v = bool(item.labels["violations"]), bool(got["violations"])
                binary["tp" if truth_v and pred_v else "fp" if pred_v else
                       "fn" if truth_v else "tn"] += 1
            if errors:
                worst.append((errors, item.id, {
                    "id": item.id, "side": side, "text": item.text, "errors": errors,
                    "expected": {f: list(item.labels[f]) for f in fams}, "predicted": got}))
    worst.sort(key=lambda w: (-w[0], w[1]))
    report: dict[str, Any] = {
        "split": split, "items": len(items),
        "versions": dict(tagger.versions),
        "labels": {}, "families": {},
        "violation_vs_none": {**prf(binary["tp"], binary["fp"], binary["fn"]),
                              "items": sum(binary.values())},
        "scripts": {s: {**prf(c["tp"], c["fp"], c["fn"])} for s, c in sorted(scripts.items())},
        "confusion": {f: {t: dict(sorted(row.items())) for t, row in sorted(conf.items())}
                      for f, conf in confusion.items()},
        "worst": [w[2] for w in worst[:WORST]],
    }
    for fam in FAMILIES:
        fam_counts = counts[fam]
        report["labels"][fam] = {
            label: {"tp": c["tp"], "fp": c["fp"], "fn": c["fn"], "support": c["support"],
                    **prf(c["tp"], c["fp"], c["fn"])}
            for label, c in sorted(fam_counts.items())}
        tp, fp, fn = (sum(c[k] for c in fam_counts.values()) for k in ("tp", "fp", "fn"))
        report["families"][fam] = {**prf(tp, fp, fn), "tp": tp, "fp": fp, "fn": fn,
                                   "items": len(sides[tagger.taxonomy.families[fam].side])}
    return report


def _confuse(table: dict[str, Counter[str]], truth: set[str], pred: set[str]) -> None:
    missed, wrong = sorted(truth - pred), sorted(pred - truth)
    for label in truth & pred:
        table[label][label] += 1
    for label in missed:
        for p in wrong or ["none"]:
            table[label][p] += 1
    if not missed:
        for p in wrong:
            table["none"][p] += 1
    if not truth and not pred:
        table["none"]["none"] += 1


def check(report: dict[str, Any], recorded: dict[str, Any], tolerance: float = 0.03
          ) -> list[str]:
    """Families whose micro-F1 dropped more than ``tolerance`` below ``recorded``."""
    failures = []
    for fam, was in sorted(recorded.get("families", {}).items()):
        now = report["families"].get(fam, {}).get("f1")
        if now is None:
            failures.append(f"{fam}: recorded micro-F1 {was['f1']:.3f}, no longer measured")
        elif now < was["f1"] - tolerance:
            failures.append(f"{fam}: micro-F1 {now:.3f}, recorded {was['f1']:.3f} "
                            f"(dropped {was['f1'] - now:.3f} > {tolerance:.2f})")
    return failures


def recorded_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What ``docs/text-quality.json`` keeps: the figures the gate and the docs quote."""
    return {"split": report["split"], "items": report["items"], "versions": report["versions"],
            "families": {f: {"f1": v["f1"], "precision": v["precision"],
                             "recall": v["recall"]} for f, v in report["families"].items()},
            "violation_vs_none": report["violation_vs_none"], "scripts": report["scripts"]}
