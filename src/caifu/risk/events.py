"""Risk-event classification: which of the ten events (or none) a news item reports, its
polarity, severity, and the sentence that carries it — the chat tagger's hybrid design.

**Lexicon first** (``caifu/data/risk/events.yaml``): the exchanges' and the CSRC's terms for each
event (立案告知书, 平仓线, 无法表示意见 …) and the words that take the risk back (澄清, 结案,
撤销退市风险警示 …) and of routine notices (回购, 分红 …), matched with Aho-Corasick on the
normalised text. Each group that fires is a feature and, when it wins, the quoted evidence.

**Then a classifier** trained on the corpus's train split (``caifu risk train``): the text's
character 1–3-grams (digits read as 0, traditional read as simplified) scaled like the chat
classifier's (``1/sqrt(max(n, LENGTH_FLOOR))``) plus one column per lexicon group, and a
multinomial logistic regression over the 11 classes (balanced class weights, ``C`` chosen by
the dev split's macro-F1). A second one gives the polarity. The lexicon is not a veto: a denial
("公司未收到立案告知书") carries the investigation's words and the denial's, and the weights
learnt from real denials decide — except where a denial or an end takes back every trigger of
the winning event (``EventClassifier._veto``): then the answer is none.

**What is read.** A news item states its event in the headline and the lead: the classifier
reads the title and the first ``LEAD_CHARS`` characters of the body (the corpus's snippets are
at most 200). Company linking reads everything.

**Output** per item: ``event_type``, ``polarity`` (negative / neutral / positive: a risk event is
read over negative and neutral, none over neutral and positive), ``severity`` (the lexicon's,
per class; none for none), the probability, the sentence that carries the event (the sentence
whose n-grams and lexicon hits add most to the winning class), and the evidence: lexicon hits
and the top n-grams, each with its span in the text as written.

**Speed.** N-grams are looked up with numpy, not a Python dict: each character is its code
point, a 1-, 2- or 3-gram is the code points packed into one 64-bit key (21 bits each), and the
vocabulary is a sorted key array searched with ``np.searchsorted`` for a whole batch at once.

Files, versioning and reproducibility as the chat model (``model.npz`` with fixed timestamps and
``manifest.json`` with the corpus digest, parameters, library versions and the npz's SHA-256).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np

from caifu.core.errors import ConfigError
from caifu.risk.alerts import EVENT_TYPES
from caifu.risk.corpus import NewsCorpus, NewsItem
from caifu.text.classifier import (
    feature_text,
    grams,
    libraries,
    read_model_files,
    write_model_files,
)
from caifu.text.normalise import normalise_many

__all__ = ["EventClassifier", "EventLexicon", "EventModel", "RiskEvent", "default_classifier",
           "load_lexicon", "packaged_event_model_dir", "train_events"]

FORMAT = 1
CLASSES: tuple[str, ...] = EVENT_TYPES  # ten events, then "none"
POLARITY: tuple[str, ...] = ("negative", "neutral", "positive")
LEAD_CHARS = 300
LENGTH_FLOOR = 20
# a lexicon group's feature value (an n-gram's is 1/sqrt(max(n, LENGTH_FLOOR)) <= 0.22): 0.5,
# 1 and 2 gave the same 5-fold macro-F1 (0.870, 0.865, 0.867); 2 the fewest false alerts
LEXICON_VALUE = 2.0
C_GRID = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
_BITS = 21  # a code point fits in 21 bits; three fit in a 64-bit key
_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]?")
_SEVERITIES = ("low", "medium", "high")
_CLAUSE_GAP = "[^。！？!?；;,，\\s]{0,30}?"  # "A…B": B follows A within one clause
VETO_GROUPS = ("cancel:denial", "cancel:ended")
_NEGATION_REACH = 30
_CLAUSE_END = "。！？!?；;,， \u3000\t\n"
VETO_REACH = 12  # a denial or end this close before a trigger, in its clause, takes it back


# --- lexicon ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LexiconHit:
    group: str  # an event class, or cancel:<group> (denial, ended, general, routine)
    phrase: str  # as in the lexicon (normalised)
    start: int
    end: int


@dataclass
class EventLexicon:
    version: int
    digest: str
    names: dict[str, str]  # class → Chinese name
    severity: dict[str, str]  # class → low | medium | high
    groups: list[str]  # feature order
    phrases: dict[str, list[str]]  # group → normalised phrases; "A…B": A then B in a clause
    negators: list[str] = field(default_factory=list)
    _automaton: Any = field(default=None, repr=False)
    _patterns: list[tuple[int, str, re.Pattern[str]]] = field(default_factory=list, repr=False)
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        import ahocorasick

        by_phrase: dict[str, list[int]] = {}
        for g, group in enumerate(self.groups):
            for p in self.phrases[group]:
                if "…" in p:
                    a, b = p.split("…", 1)
                    self._patterns.append((g, p, re.compile(
                        re.escape(a) + _CLAUSE_GAP + re.escape(b))))
                else:
                    by_phrase.setdefault(p, []).append(g)
        self._index = {g: i for i, g in enumerate(self.groups)}
        self._negator = re.compile("|".join(map(re.escape, sorted(self.negators, key=len,
                                                                  reverse=True)))) \
            if self.negators else None
        automaton = ahocorasick.Automaton()
        for p, gs in by_phrase.items():
            automaton.add_word(p, (p, tuple(gs)))
        automaton.make_automaton()
        self._automaton = automaton

    def hits(self, normalised: str) -> list[LexiconHit]:
        """Every phrase in ``normalised``, except one inside a longer phrase of another group
        ("保留意见" inside "无保留意见"); a trigger after a negator in its clause also gives a
        ``cancel:denial`` hit from the negator to the trigger's end."""
        raw = [LexiconHit(self.groups[g], p, end + 1 - len(p), end + 1)
               for end, (p, gs) in self._automaton.iter(normalised) for g in gs]
        for g, p, rx in self._patterns:
            raw += [LexiconHit(self.groups[g], p, m.start(), m.end())
                    for m in rx.finditer(normalised)]
        out = [h for h in raw if not any(
            o.group != h.group and o.start <= h.start and h.end <= o.end
            and o.end - o.start > h.end - h.start for o in raw)]
        if self._negator is not None:
            out += self._negated(normalised, out)
        return out

    def _negated(self, normalised: str, hits: list[LexiconHit]) -> list[LexiconHit]:
        assert self._negator is not None
        found = []
        for h in hits:
            if h.group.startswith("cancel:"):
                continue
            before = normalised[max(0, h.start - _NEGATION_REACH):h.start]
            cut = max((before.rfind(ch) for ch in _CLAUSE_END), default=-1)
            matches = list(self._negator.finditer(before, cut + 1))
            if matches:
                m = matches[-1]  # the nearest negator
                start = h.start - len(before) + m.start()
                found.append(LexiconHit("cancel:denial", f"{m.group()}…{h.phrase}", start,
                                        h.end))
        return found

    @property
    def group_index(self) -> dict[str, int]:
        return self._index


def load_lexicon(path: Path | Traversable | None = None) -> EventLexicon:
    import yaml

    where = path if path is not None else files("caifu.data").joinpath("risk", "events.yaml")
    data = where.read_bytes()
    raw = yaml.safe_load(data)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with classes, cancel and negators")
    problems = []
    classes, cancel = raw.get("classes") or {}, raw.get("cancel") or {}
    if not isinstance(classes, dict) or not isinstance(cancel, dict):
        raise ConfigError(f"{where}: classes and cancel must be mappings")
    missing = [c for c in CLASSES[:-1] if c not in classes]
    unknown = sorted(set(classes) - set(CLASSES[:-1]))
    if missing or unknown:
        problems.append(f"classes must be exactly {', '.join(CLASSES[:-1])} (missing: "
                        f"{', '.join(missing) or '-'}; unknown: {', '.join(unknown) or '-'})")
    for cls, spec in classes.items():
        if not isinstance(spec, dict):
            problems.append(f"{cls}: expected a mapping with zh, severity and triggers")
            continue
        if spec.get("severity") not in _SEVERITIES:
            problems.append(f"{cls}: severity must be one of {', '.join(_SEVERITIES)}")
        if not spec.get("zh") or not isinstance(spec.get("triggers"), list) \
                or not spec["triggers"]:
            problems.append(f"{cls}: needs zh and triggers")
    for group, phrases in cancel.items():
        if not isinstance(phrases, list) or not phrases:
            problems.append(f"cancel.{group}: expected a non-empty list of phrases")
    if not isinstance(raw.get("negators") or [], list):
        problems.append("negators: expected a list of words")
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    groups = list(CLASSES[:-1]) + [f"cancel:{k}" for k in sorted(cancel)]
    lists = [classes[c]["triggers"] for c in CLASSES[:-1]] + [cancel[k] for k in sorted(cancel)]
    phrases = {g: sorted({"…".join(normalise_many(str(p).split("…"))) for p in ps})
               for g, ps in zip(groups, lists, strict=True)}
    return EventLexicon(int(raw.get("version", 1)), hashlib.sha256(data).hexdigest()[:16],
                        {c: str(classes[c]["zh"]) for c in CLASSES[:-1]},
                        {c: str(classes[c]["severity"]) for c in CLASSES[:-1]}, groups, phrases,
                        normalise_many([str(n) for n in raw.get("negators") or []]))


# --- features --------------------------------------------------------------------------------


def _keys(s: str) -> tuple[np.ndarray, np.ndarray]:
    """The 64-bit keys of ``s``'s 1-, 2- and 3-grams and each one's start."""
    c = np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = len(c)
    if n == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    b = np.uint64(_BITS)
    parts = [c]
    starts = [np.arange(n)]
    if n >= 2:
        parts.append((c[:-1] << b) | c[1:])
        starts.append(np.arange(n - 1))
    if n >= 3:
        parts.append((c[:-2] << (b + b)) | (c[1:-1] << b) | c[2:])
        starts.append(np.arange(n - 2))
    return np.concatenate(parts), np.concatenate(starts)


def _vocabulary(feature_texts: Sequence[str]) -> np.ndarray:
    """Every 1-3-gram without white space of the texts (the chat classifier's ``grams``)."""
    return np.array(sorted({_key(g) for s in feature_texts for g, _ in grams(s)}),
                    dtype=np.uint64)


def _key(gram: str) -> int:
    k = 0
    for ch in gram:
        k = (k << _BITS) | ord(ch)
    return k


def _gram(key: int) -> str:
    out = []
    while key:
        out.append(chr(key & ((1 << _BITS) - 1)))
        key >>= _BITS
    return "".join(reversed(out))


@dataclass
class Encoded:
    """A batch's known n-grams: per text, its columns and where each first starts."""

    cols: list[np.ndarray]
    starts: list[np.ndarray]
    groups: list[list[int]]


def _encode(vocab: np.ndarray, normalised: Sequence[str], groups: list[list[int]]
            ) -> Encoded:
    """The batch's known n-grams, looked up in one ``searchsorted``: the texts are joined by
    a newline (no n-gram with white space is in the vocabulary, so none crosses a text)."""
    texts = [feature_text(s) for s in normalised]
    keys, pos = _keys("\n".join(texts))
    offsets = np.cumsum([0] + [len(t) + 1 for t in texts[:-1]]) if texts else np.zeros(0)
    if len(vocab) and len(keys):
        idx = np.searchsorted(vocab, keys)
        idx[idx >= len(vocab)] = 0
        known = vocab[idx] == keys
    else:
        idx, known = np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
    doc = np.searchsorted(offsets, pos[known], side="right") - 1
    combined = doc.astype(np.int64) * max(len(vocab), 1) + idx[known]
    uniq, first = np.unique(combined, return_index=True)
    uniq_doc = uniq // max(len(vocab), 1)
    bounds = np.searchsorted(uniq_doc, np.arange(len(texts) + 1))
    starts_all = pos[known][first] - offsets[doc[first]] if len(first) else first
    cols = [uniq[a:b] - r * max(len(vocab), 1)
            for r, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))]
    starts = [starts_all[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return Encoded(cols, starts, groups)


def _group_columns(lexicon: EventLexicon, hits: list[LexiconHit]) -> list[int]:
    index = lexicon.group_index
    return sorted({index[h.group] for h in hits})


def _value(n: int) -> float:
    return 1 / math.sqrt(max(n, LENGTH_FLOOR)) if n else 0.0


def _matrix(enc: Encoded, n_vocab: int, n_groups: int) -> Any:
    from scipy.sparse import csr_matrix

    indptr = np.zeros(len(enc.cols) + 1, dtype=np.int64)
    lens = [len(c) + len(g) for c, g in zip(enc.cols, enc.groups, strict=True)]
    indptr[1:] = np.cumsum(lens)
    indices = np.concatenate(
        [np.concatenate([c.astype(np.int64), np.asarray(g, np.int64) + n_vocab])
         for c, g in zip(enc.cols, enc.groups, strict=True)]) if enc.cols else np.zeros(0)
    data = np.concatenate(
        [np.concatenate([np.full(len(c), _value(len(c)), np.float32),
                         np.full(len(g), LEXICON_VALUE, np.float32)])
         for c, g in zip(enc.cols, enc.groups, strict=True)]) if enc.cols else np.zeros(0)
    return csr_matrix((data, indices, indptr), shape=(len(enc.cols), n_vocab + n_groups),
                      dtype=np.float32)


# --- model -----------------------------------------------------------------------------------


@dataclass
class EventModel:
    manifest: dict[str, Any]
    vocab: np.ndarray  # uint64 keys, sorted
    weights: np.ndarray  # float32 [vocab + groups, classes]
    intercepts: np.ndarray  # float32 [classes]
    polarity_weights: np.ndarray  # float32 [vocab + groups, 3]
    polarity_intercepts: np.ndarray

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def save(self, folder: Path) -> tuple[Path, Path]:
        return write_model_files(folder, {
            "vocab": self.vocab, "weights": self.weights, "intercepts": self.intercepts,
            "polarity_weights": self.polarity_weights,
            "polarity_intercepts": self.polarity_intercepts}, self.manifest)

    @classmethod
    def load(cls, folder: Path | Traversable | None = None) -> EventModel:
        manifest, data = read_model_files(
            folder if folder is not None else packaged_event_model_dir(), FORMAT,
            "no trained event model (manifest.json and model.npz); run `caifu risk train`")
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(manifest, z["vocab"], z["weights"], z["intercepts"],
                       z["polarity_weights"], z["polarity_intercepts"])


def packaged_event_model_dir() -> Traversable:
    return files("caifu.data").joinpath("risk", "model")


# --- classification --------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskEvent:
    event_type: str
    polarity: str
    severity: str | None
    probability: float
    sentence: str  # as written
    sentence_span: tuple[int, int]  # in the text as given
    lexicon: tuple[tuple[str, str, int, int], ...]  # (group, phrase, start, end) in the text
    ngrams: tuple[tuple[str, int, float], ...]  # (n-gram as written, start, contribution)
    model_version: str
    lexicon_version: str
    decided_by: str = "model"  # model | lexicon_veto (a denial or end overrode the model)

    @property
    def alert(self) -> bool:
        """A risk the holders should hear of: an event, read as negative."""
        return self.event_type != "none" and self.polarity == "negative"

    def as_json(self) -> dict[str, Any]:
        return {"event_type": self.event_type, "polarity": self.polarity,
                "severity": self.severity, "evidence": self.evidence()}

    def evidence(self) -> dict[str, Any]:
        return {"probability": round(self.probability, 4), "sentence": self.sentence,
                "sentence_span": list(self.sentence_span),
                "lexicon": [{"group": g, "phrase": p, "start": s, "end": e}
                            for g, p, s, e in self.lexicon],
                "ngrams": [{"text": t, "start": s, "weight": round(w, 4)}
                           for t, s, w in self.ngrams],
                "decided_by": self.decided_by, "model_version": self.model_version,
                "lexicon_version": self.lexicon_version}


def _sentences(text: str) -> list[tuple[int, int]]:
    spans = [(m.start(), m.end()) for m in _SENTENCE.finditer(text)]
    return [(a, b) for a, b in spans if text[a:b].strip()] or [(0, len(text))]


class EventClassifier:
    """``classify(texts)``: one ``RiskEvent`` per text (a headline, or title + body joined
    by a newline)."""

    def __init__(self, model: EventModel, lexicon: EventLexicon) -> None:
        if model.manifest.get("lexicon_digest") != lexicon.digest:
            raise ConfigError("the event model was trained with another lexicon (digest "
                              f"{model.manifest.get('lexicon_digest')}, this one "
                              f"{lexicon.digest}): run `caifu risk train`")
        self.model, self.lexicon = model, lexicon
        self._n_vocab, self._n_groups = len(model.vocab), len(lexicon.groups)
        self.weights_by_class = np.ascontiguousarray(model.weights.T)

    @property
    def version(self) -> str:
        return self.model.version

    def classify(self, texts: Sequence[str]) -> list[RiskEvent]:
        leads = [t[:LEAD_CHARS] for t in texts]
        normalised = normalise_many(leads)
        all_hits = [self.lexicon.hits(s) for s in normalised]
        enc = _encode(self.model.vocab, normalised,
                      [_group_columns(self.lexicon, h) for h in all_hits])
        x = _matrix(enc, self._n_vocab, self._n_groups)
        margins = np.asarray(x @ self.model.weights) + self.model.intercepts
        pol = np.asarray(x @ self.model.polarity_weights) + self.model.polarity_intercepts
        out = []
        for r, lead in enumerate(leads):
            k = int(np.argmax(margins[r]))
            z = margins[r] - margins[r].max()
            prob = float(np.exp(z[k]) / np.exp(z).sum())
            hits = all_hits[r]
            veto = self._veto(lead, CLASSES[k], hits) if CLASSES[k] != "none" else None
            if veto is not None:
                k, prob = CLASSES.index("none"), 1.0
                polarity = "positive" if veto.group == "cancel:ended" else "neutral"
            else:
                allowed = (0, 1) if CLASSES[k] != "none" else (1, 2)
                polarity = POLARITY[max(allowed, key=lambda j: pol[r, j])]
            event = CLASSES[k]
            out.append(self._explain(lead, enc, r, k, event, polarity, prob, hits, veto))
        return out

    @staticmethod
    def _veto(lead: str, event: str, hits: list[LexiconHit]) -> LexiconHit | None:
        """The denial or end that takes back *every* trigger of ``event`` in the lead — each
        is inside a denial or end (未收到…立案告知书, 撤销…退市风险警示), or one ends at most
        ``VETO_REACH`` characters before it in its clause (公司未收到中国证监会立案告知书) —
        or None. One trigger left standing (被留置…, 所涉事项与公司无关), a denial after the
        trigger (被强制平仓…及部分股份解除质押) or far before it (澄清… 40 characters on …减持)
        is no veto: the model decides."""
        triggers = [h for h in hits if h.group == event]
        vetoes = [h for h in hits if h.group in VETO_GROUPS]
        if not triggers or not vetoes:
            return None
        used = None
        for t in triggers:
            by = next((v for v in vetoes if v.start <= t.start and t.end <= v.end), None)
            if by is None:
                by = next((v for v in vetoes if v.end <= t.start <= v.end + VETO_REACH
                           and not any(ch in _CLAUSE_END for ch in lead[v.end:t.start])),
                          None)
            if by is None:
                return None
            used = used or by
        return used

    def _explain(self, lead: str, enc: Encoded, r: int, k: int, event: str, polarity: str,
                 prob: float, all_hits: list[LexiconHit], veto: LexiconHit | None
                 ) -> RiskEvent:
        cols, starts = enc.cols[r], enc.starts[r]
        value = _value(len(cols))
        w = self.weights_by_class[k, cols] * value if len(cols) else np.zeros(0)
        hits = [veto] if veto is not None else [
            h for h in all_hits
            if h.group == event or (event == "none" and h.group.startswith("cancel:"))]
        spans = _sentences(lead)
        bounds = np.array([b for _, b in spans])

        def sentence_of(pos: Any) -> Any:  # the sentence a position (or positions) is in
            return np.minimum(np.searchsorted(bounds, pos, side="right"), len(spans) - 1)

        score = np.zeros(len(spans))
        if veto is not None:
            score[sentence_of(veto.start)] = 1.0
        else:
            if len(cols):
                np.add.at(score, sentence_of(starts), w)
            index = self.lexicon.group_index
            for h in hits:
                score[sentence_of(h.start)] += float(
                    self.weights_by_class[k, self._n_vocab + index[h.group]])
        best = int(np.argmax(score)) if len(spans) > 1 else 0
        a, b = spans[best]
        if len(w) and veto is None:
            part = np.argpartition(-w, min(5, len(w) - 1))[:5] if len(w) > 5 else np.arange(len(w))
            top = part[np.argsort(-w[part], kind="stable")]
        else:
            top = []
        grams = []
        for j in top:
            if w[j] <= 0:
                break
            g = _gram(int(self.model.vocab[cols[j]]))
            s0 = int(starts[j])
            grams.append((lead[s0:s0 + len(g)], s0, float(w[j])))
        lex = tuple((h.group, h.phrase, h.start, h.end) for h in hits)
        return RiskEvent(event, polarity, self.lexicon.severity.get(event), prob,
                         lead[a:b].strip(), (a, b), lex, tuple(grams), self.model.version,
                         str(self.lexicon.digest), "lexicon_veto" if veto else "model")


@lru_cache(maxsize=4)
def _cached(folder: str | None) -> EventClassifier:
    model = EventModel.load(Path(folder) if folder else None)
    return EventClassifier(model, load_lexicon())


def default_classifier(folder: Path | None = None) -> EventClassifier:
    """The shipped model (or the one in ``folder``) with the shipped lexicon, once a process."""
    return _cached(str(folder) if folder else None)


# --- training --------------------------------------------------------------------------------


def params() -> dict[str, Any]:
    return {"ngrams": [1, 2, 3], "c_grid": list(C_GRID), "model": "multinomial_logistic",
            "solver": "lbfgs", "class_weight": "balanced", "length_floor": LENGTH_FLOOR,
            "lead_chars": LEAD_CHARS, "features": "ngrams_scaled+lexicon_groups",
            "digits": "as_0", "c_by": "dev_macro_f1"}


def train_events(corpus: NewsCorpus, lexicon: EventLexicon) -> EventModel:
    """The event and polarity models from ``corpus``'s train split; ``C`` by dev macro-F1."""
    from threadpoolctl import threadpool_limits

    train_items, dev_items = corpus.split("train"), corpus.split("dev")
    prm, libs = params(), libraries()
    key = json.dumps([corpus.digest, lexicon.digest, prm, libs], sort_keys=True)
    with threadpool_limits(1):
        fitted = fit(train_items, dev_items, lexicon)
    manifest = {"format": FORMAT, "version": hashlib.sha256(key.encode()).hexdigest()[:16],
                "corpus_sha256": corpus.digest, "lexicon_digest": lexicon.digest,
                "lexicon_version": lexicon.version, "classes": list(CLASSES),
                "polarity": list(POLARITY), "groups": lexicon.groups, "params": prm,
                "libraries": libs, "train_items": len(train_items),
                "dev_items": len(dev_items), "vocab": int(len(fitted.vocab)),
                "c": fitted.manifest["c"], "dev_macro_f1": fitted.manifest["dev_macro_f1"]}
    fitted.manifest = manifest
    return fitted


def fit(train_items: Sequence[NewsItem], dev_items: Sequence[NewsItem],
        lexicon: EventLexicon) -> EventModel:
    """Fit on ``train_items``, pick C on ``dev_items`` (no manifest beyond c and the score)."""
    from sklearn.linear_model import LogisticRegression

    norm_train = normalise_many([i.text for i in train_items])
    vocab = _vocabulary([feature_text(s) for s in norm_train])
    n_groups = len(lexicon.groups)
    norm_dev = normalise_many([i.text for i in dev_items])
    x_train = _matrix(_encode(vocab, norm_train, [_group_columns(lexicon, lexicon.hits(s))
                                                  for s in norm_train]), len(vocab), n_groups)
    x_dev = _matrix(_encode(vocab, norm_dev, [_group_columns(lexicon, lexicon.hits(s))
                                              for s in norm_dev]), len(vocab), n_groups)
    y_train = np.array([CLASSES.index(i.event_type) for i in train_items])
    y_dev = np.array([CLASSES.index(i.event_type) for i in dev_items])
    best: tuple[float, float, Any] | None = None
    for c_value in C_GRID:
        lr = LogisticRegression(C=c_value, class_weight="balanced", solver="lbfgs",
                                max_iter=3000, random_state=0).fit(x_train, y_train)
        score = macro_f1(y_dev, lr.predict(x_dev), len(CLASSES))
        if best is None or score > best[0] + 1e-12:
            best = (score, c_value, lr)
    assert best is not None
    weights, intercepts = _full(best[2], len(CLASSES))
    y_pol = np.array([POLARITY.index(i.polarity) for i in train_items])
    pol = LogisticRegression(C=best[1], class_weight="balanced", solver="lbfgs",
                             max_iter=3000, random_state=0).fit(x_train, y_pol)
    pol_w, pol_b = _full(pol, len(POLARITY))
    return EventModel({"c": best[1], "dev_macro_f1": round(best[0], 4)}, vocab, weights,
                      intercepts, pol_w, pol_b)


def _full(lr: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights [features × n] and intercepts [n] with a column for every class (a class absent
    from train never wins: its intercept is very low)."""
    weights = np.zeros((lr.coef_.shape[1], n), np.float32)
    intercepts = np.full(n, -1e3, np.float32)
    for j, cls in enumerate(lr.classes_):
        weights[:, int(cls)] = lr.coef_[j]
        intercepts[int(cls)] = lr.intercept_[j]
    return weights, intercepts


def macro_f1(truth: np.ndarray, pred: np.ndarray, n: int) -> float:
    scores = []
    for k in range(n):
        tp = int(((pred == k) & (truth == k)).sum())
        denom = int((pred == k).sum()) + int((truth == k).sum())
        if denom:
            scores.append(2 * tp / denom)
    return float(np.mean(scores)) if scores else 0.0
