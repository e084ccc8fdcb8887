"""The hybrid chat tagger: dictionaries for named things, learned classifiers for the rest.

    tagger = HybridTagger.load()                      # shipped model + seed dictionaries
    tagger = HybridTagger.load(securities=sec, funds=funds, model_dir=ws_model)  # a tenant's
    tagger.tag_batch(["請問創業板怎麼開通"], side="customer")[0].interests   # ['chinext']

**Customer side.** The seed dictionaries and the tenant's securities and funds
(``caifu.text.dictionaries``) find named things; their ids are mapped onto the taxonomy
(``board.chinext``/``index.chinext`` → ``chinext``, ``industry.白酒`` → ``liquor`` …, see
``DICTIONARY_TO_TAXONOMY``) and a tenant's ``security.600519``/``fund.110011`` become
``security:600519``/``fund:110011`` in ``interests``. The customer classifier
(``caifu.text.classifier``) adds every label whose margin reaches its threshold.

**Advisor side.** The compliance lexicon (``caifu.text.compliance``) is the explainable first
pass, its categories mapped onto the violation ids (``COMPLIANCE_TO_TAXONOMY``); the advisor
classifier catches paraphrase. Its *any violation* column (``classifier.ANY``, threshold set for
recall 0.90) decides violation against none: when it fires and neither the lexicon nor a label
did, the violation label nearest its own threshold is flagged.

**Lexicon + classifier.** A dictionary hit for an interest is taken as it is (a named thing is
named). A dictionary or lexicon hit for an intent, emotion or violation is taken only when the
classifier's margin for that label is at least ``threshold − slack``: the lexicon alone cannot
make "创业板的涨跌幅限制是多少" an ``open_permission``. ``slack`` per family is chosen on the dev
split by ``calibrate`` (0: the classifier alone decides; ``inf``: every hit counts) and stored
in the model's manifest.

**Negation and hedges by clause.** Dictionary and lexicon hits are dropped when a negator is
anywhere before them in the same clause (no scope breaker such as 但是 between) or a refusal
anywhere after them in it — the clause, not a window of characters. Clauses end at
``，。！？；,.!?;``, line breaks, ``~ …`` and a space between two CJK characters.

**Evidence** for every tag: ``{"source": "dictionary"|"lexicon", "rule", "span", "matched"}`` for
a hit (``matched`` is ``text[span[0]:span[1]]`` of the original message), and
``{"source": "model", "score", "ngrams": [{"ngram", "span", "matched", "weight"}]}`` for the
classifier (the top n-grams, each quoted from the original message). Labels are computed for
every message; a message's evidence is built when ``MessageTags.evidence`` is first read.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from functools import partial
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np

from caifu.text.classifier import ANY, Prediction, SideModel, TextModel
from caifu.text.compliance import Lexicon, default_lexicon
from caifu.text.dictionaries import seed_rules
from caifu.text.normalise import normalise_many
from caifu.text.tagging import ChatTagger, TextHit, TextRule
from caifu.text.taxonomy import FAMILIES, Taxonomy, default_taxonomy

__all__ = ["COMPLIANCE_TO_TAXONOMY", "DICTIONARY_TO_TAXONOMY", "SLACK_GRID", "HybridTagger",
           "MessageTags", "calibrate", "fit"]

_BOARDS = {"board.chinext": "chinext", "index.chinext": "chinext", "index.chinext50": "chinext",
           "board.star": "star_market", "index.star50": "star_market", "board.bse": "bse",
           "index.sse50": "sse50", "index.csi300": "csi300", "index.csi500": "csi500",
           "index.csi1000": "csi500", "index.hsi": "hk_stock", "index.hstech": "hk_stock",
           "index.nasdaq100": "us_stock", "index.sp500": "us_stock"}
_SECTORS = {"new_energy": ("theme.新能源", "theme.新能源汽车", "theme.光伏", "industry.光伏设备",
                           "theme.锂电池", "theme.盐湖提锂"),
            "semiconductor": ("industry.半导体", "theme.芯片", "theme.第三代半导体",
                              "theme.MCU芯片", "theme.汽车芯片"),
            "liquor": ("industry.白酒",), "bank": ("industry.银行",),
            "pharma": ("theme.医药", "industry.医疗器械", "industry.医疗服务", "industry.医药商业"),
            "gold": ("theme.黄金", "industry.贵金属")}
_INTENTS = {"intent.open_permission": "open_permission", "intent.open_account": "open_account",
            "intent.level2": "level2", "intent.redeem": "redeem", "intent.add": "add_position",
            "intent.fee": "fee_complaint", "emotion.complaint": "complaint",
            "emotion.loss_anxiety": "loss_anxiety"}
DICTIONARY_TO_TAXONOMY: dict[str, str] = {
    **_BOARDS, **{tag: label for label, tags in _SECTORS.items() for tag in tags}, **_INTENTS}
COMPLIANCE_TO_TAXONOMY = {"guaranteed_return": "guaranteed_return", "certainty": "certainty",
                          "inside_information": "inside_info", "profit_sharing": "profit_sharing",
                          "exaggeration": "misleading_performance", "off_platform": "off_platform"}
# profit_sharing phrases that are about dealing for the customer, not sharing his profit
_PRIVATE_DEALING = re.compile(r"代客|代为|代理操作|帮[你您]|替[你您]|账户|账号|密码|验证码")
SLACK_GRID = (0.0, 0.5, 1.0, 2.0, math.inf)
_CLAUSE_MARKS = re.compile(r"[~…]|(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])")
_WIDE = 10_000  # a negation "window" wider than any message: the clause is the scope


Hits = tuple[list[tuple[str, str, int, int]], set[str]]


class MessageTags:
    """One message's labels by family; ``evidence`` (label → list of evidence items) is built
    when first read unless given: most messages' tags are counted, few are shown or stored."""

    def __init__(self, interests: list[str] | None = None, intents: list[str] | None = None,
                 emotions: list[str] | None = None, violations: list[str] | None = None,
                 evidence: dict[str, list[dict[str, Any]]] | None = None,
                 explain: Callable[[], dict[str, list[dict[str, Any]]]] | None = None) -> None:
        self.interests, self.intents = interests or [], intents or []
        self.emotions, self.violations = emotions or [], violations or []
        self._evidence, self._explain = evidence, explain

    @property
    def evidence(self) -> dict[str, list[dict[str, Any]]]:
        if self._evidence is None:
            self._evidence = self._explain() if self._explain is not None else {}
            self._explain = None
        return self._evidence

    def labels(self, family: str) -> list[str]:
        return list(getattr(self, family))

    def to_json(self) -> dict[str, Any]:
        return {f: self.labels(f) for f in FAMILIES} | {"evidence": self.evidence}

    def __repr__(self) -> str:
        return "MessageTags(" + ", ".join(f"{f}={self.labels(f)!r}" for f in FAMILIES) + ")"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MessageTags) and self.to_json() == other.to_json()


class HybridTagger:
    """Build once (dictionaries, lexicon, model), then ``tag_batch`` messages of one side."""

    def __init__(self, model: TextModel, rules: Sequence[TextRule], lexicon: Lexicon,
                 taxonomy: Taxonomy | None = None) -> None:
        self.model, self.taxonomy = model, taxonomy or default_taxonomy()
        self._tagger = ChatTagger(rules, negation_window=_WIDE)
        doc_neg = lexicon.window
        self._columns = {side: {label: c for c, (_, label) in enumerate(m.labels)}
                         for side, m in model.sides.items()}
        self.lexicon = lexicon.clause_scoped()
        self.slack: dict[str, float] = {f: float(v) for f, v in
                                        model.manifest.get("hybrid", {}).get("slack", {}).items()}
        digest = hashlib.sha256(repr(sorted((r.tag, r.patterns) for r in rules)).encode())
        self.versions = {"model": model.version, "taxonomy": self.taxonomy.version,
                         "dictionaries": digest.hexdigest()[:12],
                         "lexicon": f"{lexicon.version} (negation by clause, not {doc_neg})"}

    @classmethod
    def load(cls, model_dir: Path | Traversable | None = None, securities: Any = None,
             funds: Any = None, lexicon: Lexicon | None = None,
             taxonomy: Taxonomy | None = None) -> HybridTagger:
        return cls(TextModel.load(model_dir), seed_rules(securities, funds),
                   lexicon or default_lexicon(), taxonomy)

    def tag_batch(self, texts: Sequence[str], side: str, evidence: bool = True
                  ) -> list[MessageTags]:
        if side not in ("customer", "advisor"):
            raise ValueError(f"side must be 'customer' or 'advisor', got {side!r}")
        norms = normalise_many(list(texts))
        model = self.model.sides[side]
        preds = model.predict(norms)
        if side == "customer":
            hits = [self._dictionary_hits(t, s) for t, s in zip(texts, norms, strict=True)]
        else:
            hits = [self._lexicon_hits(t, s) for t, s in zip(texts, norms, strict=True)]
        predicted = _predicted(model, preds)
        return [self._combine(t, h, p, model, evidence, cols)
                for t, h, p, cols in zip(texts, hits, preds, predicted, strict=True)]

    def tag(self, text: str, side: str) -> MessageTags:
        return self.tag_batch([text], side)[0]

    # --- the two first passes ----------------------------------------------------------------

    def _dictionary_hits(self, text: str, s: str) -> Hits:
        """``(taxonomy id, rule, start, end)`` of the dictionary hits, and the labels only
        negated mentions named."""
        if not text:
            return [], set()
        s = _CLAUSE_MARKS.sub(_commas, s)
        dropped: list[TextHit] = []
        raw = self._tagger.tag_normalised(text, s, negated=dropped)
        negated = {DICTIONARY_TO_TAXONOMY.get(h.tag) for h in dropped}
        named = {(h.start, h.end) for h in raw if h.tag.startswith("security.")}
        out = []
        for h in raw:
            head, _, code = h.tag.partition(".")
            if head in ("security", "fund"):
                out.append((f"{head}:{code}", h.tag, h.start, h.end))
            elif h.tag in DICTIONARY_TO_TAXONOMY and not (
                    h.tag.startswith("board.") and (h.start, h.end) in named):
                # a security's name is evidence of the security, not of talk about its board
                out.append((DICTIONARY_TO_TAXONOMY[h.tag], h.tag, h.start, h.end))
        return out, {x for x in negated if x} - {label for label, *_ in out}

    def _lexicon_hits(self, text: str, s: str) -> Hits:
        if not text:
            return [], set()
        out, negated = [], set()
        for f in self.lexicon.check_normalised(text, _CLAUSE_MARKS.sub(_commas, s), "advisor"):
            label = COMPLIANCE_TO_TAXONOMY.get(f.category)
            if label == "profit_sharing" and _PRIVATE_DEALING.search(f.phrase):
                label = "private_dealing"
            if label is None:
                continue
            if f.negated:
                negated.add(label)
            else:
                out.append((label, f"{f.category}:{f.phrase}", f.start, f.end))
        return out, negated - {label for label, *_ in out}

    # --- combining ---------------------------------------------------------------------------

    def _combine(self, text: str, found: Hits, p: Prediction, model: SideModel,
                 evidence: bool, columns: list[int]) -> MessageTags:
        """Dictionary/lexicon hits (gated by the classifier's margin) plus the classifier's
        labels, minus the labels whose only mention sits in a negated clause."""
        hits, negated = found
        out = MessageTags()
        ev: dict[str, list[dict[str, Any]]] = {}
        column = self._columns[model.side]
        source = "dictionary" if model.side == "customer" else "lexicon"
        for label, rule, a, b in hits:
            c = column.get(label)
            if c is not None and model.labels[c][0] != "interests":
                slack = self.slack.get(model.labels[c][0], math.inf)
                if p.margins[c] < model.thresholds[c] - slack:
                    continue
            ev.setdefault(label, []).append(
                {"source": source, "rule": rule, "span": [a, b], "matched": text[a:b]})
        predicted = [c for c in columns if model.labels[c][1] not in negated]
        any_col = column.get(ANY[1]) if model.side == "advisor" else None
        if any_col is not None and model.labels[any_col] == ANY and not ev and not predicted \
                and p.margins[any_col] >= model.thresholds[any_col]:
            # "any violation" fired and no label did: the label closest to its threshold
            best = max((c for c, (f, label) in enumerate(model.labels)
                        if f == "violations" and label not in negated),
                       key=lambda c: float(p.margins[c] - model.thresholds[c]), default=None)
            if best is not None:
                predicted = [best]
        labels = set(ev) | {model.labels[c][1] for c in predicted}
        for label in sorted(labels):
            fam = self.taxonomy.family_of(label) or "interests"  # security:/fund: are interests
            getattr(out, fam).append(label)
        if evidence:
            out._explain = partial(_model_evidence, text, ev, p, model, predicted)
        return out


def _model_evidence(text: str, ev: dict[str, list[dict[str, Any]]], p: Prediction,
                    model: SideModel, columns: list[int]) -> dict[str, list[dict[str, Any]]]:
    """The hits' evidence plus, for each label the classifier predicted, its score and top
    n-grams, each quoted from the original message."""
    for c in columns:
        ev.setdefault(model.labels[c][1], []).append(
            {"source": "model", "score": round(_sigmoid(float(p.margins[c])), 3),
             "ngrams": [{"ngram": g, "span": [a, a + len(g)], "matched": text[a:a + len(g)],
                         "weight": round(w, 3)} for g, a, w in model.explain(p, c)]})
    return ev


def _predicted(model: SideModel, preds: Sequence[Prediction]) -> list[list[int]]:
    """Per message, the columns whose margin reaches the label's threshold."""
    if not preds:
        return []
    margins = np.vstack([p.margins for p in preds])
    rows, cols = np.nonzero(margins >= model.thresholds)
    out: list[list[int]] = [[] for _ in preds]
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        if not model.labels[c][0].startswith("_"):
            out[r].append(c)
    return out


def _commas(m: re.Match[str]) -> str:
    return "," * len(m.group())


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x > -50 else 0.0


def calibrate(tagger: HybridTagger, dev: Sequence[Any]) -> dict[str, float]:
    """Per family, the slack (``SLACK_GRID``) with the best micro-F1 on ``dev`` corpus items
    (ties: the smaller slack); stored in the model's manifest under ``hybrid.slack``."""
    chosen: dict[str, float] = {}
    for side in ("customer", "advisor"):
        items = [i for i in dev if i.side == side]
        for fam in tagger.taxonomy.families_of(side):  # type: ignore[arg-type]
            if fam == "interests":
                continue
            best = (-1.0, 0.0)
            for slack in SLACK_GRID:
                tagger.slack[fam] = slack
                tags = tagger.tag_batch([i.text for i in items], side, evidence=False)
                tp = fp = fn = 0
                for item, t in zip(items, tags, strict=True):
                    truth, pred = set(item.labels[fam]), set(t.labels(fam))
                    tp, fp, fn = tp + len(truth & pred), fp + len(pred - truth), fn + len(
                        truth - pred)
                f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
                if f1 > best[0] + 1e-12:
                    best = (f1, slack)
            chosen[fam] = best[1]
            tagger.slack[fam] = best[1]
    tagger.model.manifest["hybrid"] = {"slack": {f: (v if math.isfinite(v) else "inf")
                                                 for f, v in sorted(chosen.items())}}
    return chosen


def fit(corpus: Any, taxonomy: Taxonomy | None = None, lexicon: Lexicon | None = None
        ) -> TextModel:
    """Train the classifiers on ``corpus``'s train split and calibrate the slack on dev
    (with the seed dictionaries: the corpus names no tenant's securities)."""
    from caifu.text.classifier import train

    taxonomy = taxonomy or default_taxonomy()
    model = train(corpus, taxonomy)
    tagger = HybridTagger(model, seed_rules(), lexicon or default_lexicon(), taxonomy)
    calibrate(tagger, corpus.split("dev"))
    return model
