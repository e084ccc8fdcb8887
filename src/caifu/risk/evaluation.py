"""Scoring the event classifier and the company linker on a news-corpus split: what
``caifu risk evaluate`` prints and gates on.

``evaluate(classifier, linker, items)`` returns a plain dict:

- ``classes``: per event class (and none) ``tp fp fn support precision recall f1``;
  ``macro_f1`` over the 11 (a class the split lacks counts 0 once predicted),
  ``macro_f1_supported`` over those it has, ``accuracy``;
- ``polarity``: accuracy of the polarity;
- ``false_alerts``: over the items labelled ``none`` (denials, clarifications, ends of a risk,
  routine notices, general news), how many the classifier reads as an alert (an event, negative)
  — ``classifier`` — and how many would reach a holder, i.e. also name a listed company the
  linker finds — ``pipeline`` (a story without a listed company alerts nobody);
- ``linking``: listed companies per item (codes) linked vs labelled, micro P/R/F1;
- ``scripts``: macro-F1 for simplified and traditional items apart;
- ``confusion``: ``{true: {predicted: n}}``; ``worst``: the misclassified items, most confident
  first.

``cross_validate(corpus, lexicon, linker)``: the same report by page-grouped 5-fold
cross-validation over train + dev — a steadier figure than a test split of ~140 items.

``check(report, recorded, tolerance)`` lists what fell by more than ``tolerance`` below the
recorded figures (``docs/risk-quality.json``): macro-F1 and linking F1.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from caifu.risk.corpus import NewsCorpus, NewsItem
from caifu.risk.events import CLASSES, EventClassifier, EventLexicon, RiskEvent, fit
from caifu.text.companies import CompanyLinker
from caifu.text.evaluation import prf as _prf

__all__ = ["check", "cross_validate", "evaluate", "recorded_summary"]

WORST = 12


def _macro(truth: Sequence[str], pred: Sequence[str]) -> float:
    scores = []
    for c in CLASSES:
        tp = sum(t == c and p == c for t, p in zip(truth, pred, strict=True))
        denom = sum(p == c for p in pred) + sum(t == c for t in truth)
        if denom:
            scores.append(2 * tp / denom)
    return round(sum(scores) / len(scores), 4) if scores else 0.0


def evaluate(classifier: EventClassifier, linker: CompanyLinker, items: Sequence[NewsItem],
             split: str = "test") -> dict[str, Any]:
    events = classifier.classify([i.text for i in items])
    return _report(items, events, linker, split,
                   {"model": classifier.version, "lexicon": classifier.lexicon.digest,
                    "linker_names": linker.pattern_count})


def _report(items: Sequence[NewsItem], events: Sequence[RiskEvent], linker: CompanyLinker,
            split: str, versions: dict[str, Any]) -> dict[str, Any]:
    truth = [i.event_type for i in items]
    pred = [e.event_type for e in events]
    classes = {}
    for c in CLASSES:
        tp = sum(t == c and p == c for t, p in zip(truth, pred, strict=True))
        fp = sum(t != c and p == c for t, p in zip(truth, pred, strict=True))
        fn = sum(t == c and p != c for t, p in zip(truth, pred, strict=True))
        classes[c] = {"tp": tp, "fp": fp, "fn": fn, "support": tp + fn, **_prf(tp, fp, fn)}
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    for t, p in zip(truth, pred, strict=True):
        confusion[t][p] += 1
    link_tp = link_fp = link_fn = 0
    fa_classifier = fa_pipeline = nones = 0
    worst = []
    for item, e in zip(items, events, strict=True):
        got = {m.code for m in linker.link(item.text) if m.listed and m.code}
        link_tp += len(item.codes & got)
        link_fp += len(got - item.codes)
        link_fn += len(item.codes - got)
        if item.event_type == "none":
            nones += 1
            fa_classifier += e.alert
            fa_pipeline += e.alert and bool(got)
        if e.event_type != item.event_type:
            worst.append((e.probability, item, e))
    worst.sort(key=lambda w: (-w[0], w[1].id))
    scripts = {}
    for script in ("simplified", "traditional"):
        rows = [(t, p) for t, p, i in zip(truth, pred, items, strict=True) if i.script == script]
        if rows:
            scripts[script] = {"items": len(rows),
                               "macro_f1": _macro([t for t, _ in rows], [p for _, p in rows])}
    supported = [c for c in CLASSES if classes[c]["support"]]
    return {
        "split": split, "items": len(items),
        "versions": versions,
        "macro_f1": _macro(truth, pred),
        # over the classes the split has examples of (a class absent from a small split
        # counts 0 in macro_f1 as soon as it is predicted once)
        "macro_f1_supported": round(sum(classes[c]["f1"] for c in supported)
                                    / len(supported), 4) if supported else 0.0,
        "accuracy": round(sum(t == p for t, p in zip(truth, pred, strict=True))
                          / len(items), 4) if items else 0.0,
        "classes": classes,
        "polarity": {"accuracy": round(sum(i.polarity == e.polarity
                                           for i, e in zip(items, events, strict=True))
                                       / len(items), 4) if items else 0.0},
        "false_alerts": {"none_items": nones, "classifier": fa_classifier,
                         "pipeline": fa_pipeline,
                         "classifier_rate": round(fa_classifier / nones, 4) if nones else 0.0,
                         "pipeline_rate": round(fa_pipeline / nones, 4) if nones else 0.0},
        "linking": {"tp": link_tp, "fp": link_fp, "fn": link_fn,
                    **_prf(link_tp, link_fp, link_fn)},
        "scripts": scripts,
        "confusion": {t: dict(row) for t, row in sorted(confusion.items())},
        "worst": [{"id": i.id, "text": i.text, "expected": i.event_type,
                   "predicted": e.event_type, "probability": round(p, 3),
                   "sentence": e.sentence} for p, i, e in worst[:WORST]],
    }


def cross_validate(corpus: NewsCorpus, lexicon: EventLexicon, linker: CompanyLinker,
                   folds: int = 5) -> dict[str, Any]:
    """Page-grouped ``folds``-fold cross-validation over the train and dev splits (the test
    split untouched): each fold is scored by a model fitted on the others, C chosen on the
    next fold. The same figures as ``evaluate``, over every train and dev item."""
    import hashlib

    from caifu.text.corpus import canonical_url

    items = [i for i in corpus.items if i.split in ("train", "dev")]
    fold = [int.from_bytes(hashlib.sha256(canonical_url(i.url).encode()).digest()[:4], "big")
            % folds for i in items]
    scored: list[NewsItem] = []
    events = []
    for k in range(folds):
        held = [i for i, f in zip(items, fold, strict=True) if f == k]
        dev = [i for i, f in zip(items, fold, strict=True) if f == (k + 1) % folds]
        fit_on = [i for i, f in zip(items, fold, strict=True) if f not in (k, (k + 1) % folds)]
        model = fit(fit_on, dev, lexicon)
        model.manifest = {"version": f"cv{k}", "lexicon_digest": lexicon.digest}
        events += EventClassifier(model, lexicon).classify([i.text for i in held])
        scored += held
    report = _report(scored, events, linker, f"{folds}-fold cv (train+dev)",
                     {"model": "cv", "lexicon": lexicon.digest,
                      "linker_names": linker.pattern_count})
    return report


def recorded_summary(report: dict[str, Any]) -> dict[str, Any]:
    return {"split": report["split"], "items": report["items"],
            "model": report["versions"]["model"], "macro_f1": report["macro_f1"],
            "macro_f1_supported": report["macro_f1_supported"],
            "accuracy": report["accuracy"], "linking_f1": report["linking"]["f1"],
            "false_alerts": report["false_alerts"], "scripts": report["scripts"],
            "polarity_accuracy": report["polarity"]["accuracy"]}


def check(report: dict[str, Any], recorded: dict[str, Any], tolerance: float = 0.03
          ) -> list[str]:
    now = {"macro_f1": report["macro_f1"], "linking_f1": report["linking"]["f1"]}
    return [f"{k}: {now[k]:.3f} < recorded {recorded[k]:.3f} - {tolerance:.2f}"
            for k in ("macro_f1", "linking_f1")
            if k in recorded and now[k] < recorded[k] - tolerance]
