"""Learned label classifiers: character n-grams and one linear model per label, per side.

**Features.** A message is ``normalise``d (so traditional text reads as simplified, full-width
as half-width; lengths kept) and each ASCII digit read as ``0`` (amounts generalise); its
character 1-, 2- and 3-grams that do not contain white space are looked up in the side's
vocabulary (every n-gram of the train split). A message is the binary vector of its known
n-grams scaled to unit length — or less, for a message of fewer than ``LENGTH_FLOOR`` n-grams
(each weighs ``1/sqrt(max(n, LENGTH_FLOOR))``): a greeting is weak evidence of anything.

**Model.** For every label of the side's families (``interests intents emotions`` for the
customer, ``violations`` for the advisor) a logistic regression, one-vs-rest, with balanced
class weights (liblinear, fixed seed, one thread). ``C`` is picked per family from ``C_GRID``
by the micro-F1 on the dev split; then each label's decision threshold is the margin that
maximises its F1 on dev, within ``_CUT_RANGE`` (0 — probability ½ — if dev has fewer than
three positives; ties go to the threshold nearest 0). A label with no positive example in train is *untrained* and never predicted.

**Files, no pickle.** ``save`` writes ``model.npz`` (per side: vocabulary, weights
``[n-grams × labels]`` float32, intercepts, thresholds) and ``manifest.json`` (labels in column
order, parameters, library versions, counts, the corpus digest, the npz's SHA-256). The zip is
written with fixed timestamps and sorted members, so retraining on the same corpus with the
same libraries gives the same bytes; ``version`` is a hash of corpus + parameters + libraries.

**Evidence.** ``explain`` gives a predicted label's top contributing n-grams, each with its span
in the original message (``text[start:end]`` quotes the speaker, traditional characters and
all).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np

from caifu.core.errors import ConfigError
from caifu.text.corpus import Corpus, CorpusItem
from caifu.text.normalise import normalise_many
from caifu.text.taxonomy import Taxonomy

__all__ = ["C_GRID", "NGRAMS", "Prediction", "SideModel", "TextModel", "packaged_model_dir",
           "train"]

FORMAT = 1
NGRAMS = (1, 2, 3)
C_GRID = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)  # 0.5 lost on dev (emotions, violations)
_DIGITS = str.maketrans("123456789", "000000000")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_MIN_DEV_POSITIVES = 3  # fewer: the threshold stays at 0 (probability ½)
_CUT_RANGE = (-1.5, 3.0)  # a threshold outside is a dev split too small to trust
# a label needs this much evidence above an empty message's margin (the intercept): with the
# 1,554-line corpus the dev-best cut for complaint fell below its intercept, and every
# greeting became a complaint (tests/cli/text/test_shipped_model.py caught it)
MIN_EVIDENCE = 0.5
# the advisor side's "any violation" column: one classifier for violation against none, whose
# threshold is set for recall (the review queue's goal: recall >= 0.90 at precision >= 0.85)
ANY = ("_any", "violation")
ANY_C = 4.0  # 1, 4, 16 compared by page-grouped 5-fold cross-validation on train+dev: 4 best
ANY_RECALL = 0.90
_FOLDS = 5


# a message with few n-grams ("你好", "明白了") is weak evidence: scaled to unit length, its two
# or three n-grams carried full weight and greetings came out as complaints. 20 (about a
# 7-character message) kept every family's 5-fold CV micro-F1 within 0.006 of no floor and
# cut labels on 14 neutral one-liners from 15 to 3; 32 and 64 lost up to 0.05 of emotions F1
LENGTH_FLOOR = 20


def feature_value(n: int) -> float:
    """Each of a message's ``n`` known n-grams weighs ``1/sqrt(max(n, LENGTH_FLOOR))``."""
    return 1 / math.sqrt(max(n, LENGTH_FLOOR)) if n else 0.0


def feature_text(normalised: str) -> str:
    """What n-grams are cut from: the normalised text with every ASCII digit read as 0."""
    return normalised.translate(_DIGITS)


def grams(s: str) -> list[tuple[str, int]]:
    """``(n-gram, start)`` of ``s`` for n in ``NGRAMS``; n-grams with white space skipped."""
    out = []
    for n in NGRAMS:
        for i in range(len(s) - n + 1):
            g = s[i:i + n]
            if not any(c.isspace() for c in g):
                out.append((g, i))
    return out


@dataclass
class Prediction:
    """One message's margins (``w·x + b`` per label) and the n-grams it was built from."""

    margins: np.ndarray
    cols: list[int]
    starts: list[int]
    value: float


@dataclass
class SideModel:
    side: str
    labels: list[tuple[str, str]]  # (family, label) per column
    vocab: list[str]
    weights: np.ndarray  # float32 [len(vocab), len(labels)]
    intercepts: np.ndarray  # float32 [len(labels)]
    thresholds: np.ndarray  # float32 [len(labels)]; inf: untrained
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {g: i for i, g in enumerate(self.vocab)}
        # the weights label by label (contiguous rows): evidence gathers one label's weights
        # over a message's n-grams
        self.weights_by_label = np.ascontiguousarray(self.weights.T)

    def encode(self, feature_texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        index = self._index.get
        out = []
        for s in feature_texts:
            seen: dict[int, int] = {}
            for n in NGRAMS:
                for i in range(len(s) - n + 1):
                    j = index(s[i:i + n])
                    if j is not None and j not in seen:
                        seen[j] = i
            out.append((list(seen), list(seen.values())))
        return out

    def predict(self, normalised: Sequence[str]) -> list[Prediction]:
        encoded = self.encode([feature_text(s) for s in normalised])
        margins = self._margins(encoded)
        return [Prediction(m, cols, starts, feature_value(len(cols)))
                for m, (cols, starts) in zip(margins, encoded, strict=True)]

    def _margins(self, encoded: list[tuple[list[int], list[int]]]) -> np.ndarray:
        from scipy.sparse import csr_matrix

        indptr = np.zeros(len(encoded) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(c) for c, _ in encoded])
        indices = np.fromiter((j for c, _ in encoded for j in c), dtype=np.int64,
                              count=int(indptr[-1]))
        data = np.repeat(np.array([feature_value(len(c)) for c, _ in encoded],
                                  dtype=np.float32), np.diff(indptr))
        x = csr_matrix((data, indices, indptr), shape=(len(encoded), len(self.vocab)))
        return np.asarray(x @ self.weights) + self.intercepts

    def explain(self, p: Prediction, column: int, top: int = 3) -> list[tuple[str, int, float]]:
        """``(n-gram, start, contribution)`` of the ``top`` n-grams pushing ``column`` up."""
        if not p.cols:
            return []
        weights = self.weights_by_label[column, np.asarray(p.cols)]
        order = np.argsort(-weights, kind="stable")[:top]
        return [(self.vocab[p.cols[k]], p.starts[k], float(weights[k]) * p.value)
                for k in order.tolist() if weights[k] > 0]


@dataclass
class TextModel:
    manifest: dict[str, Any]
    sides: dict[str, SideModel]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def save(self, folder: Path) -> tuple[Path, Path]:
        arrays: dict[str, np.ndarray] = {}
        for side, m in sorted(self.sides.items()):
            arrays[f"{side}.vocab"] = np.array(m.vocab, dtype=np.str_)
            arrays[f"{side}.weights"] = m.weights.astype(np.float32)
            arrays[f"{side}.intercepts"] = m.intercepts.astype(np.float32)
            arrays[f"{side}.thresholds"] = m.thresholds.astype(np.float32)
        return write_model_files(folder, arrays, self.manifest)

    @classmethod
    def load(cls, folder: Path | Traversable | None = None) -> TextModel:
        """The model in ``folder`` (the packaged one if None); checks the npz's hash."""
        manifest, data = read_model_files(
            folder if folder is not None else packaged_model_dir(), FORMAT,
            "no trained model (manifest.json and model.npz); run `caifu text train`")
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            sides = {side: SideModel(side, [tuple(x) for x in meta["labels"]],  # type: ignore[misc]
                                     z[f"{side}.vocab"].tolist(), z[f"{side}.weights"],
                                     z[f"{side}.intercepts"], z[f"{side}.thresholds"])
                     for side, meta in manifest["sides"].items()}
        return cls(manifest, sides)


def packaged_model_dir() -> Traversable:
    return files("caifu.data").joinpath("text", "model")


def write_model_files(folder: Path, arrays: dict[str, np.ndarray], manifest: dict[str, Any]
                      ) -> tuple[Path, Path]:
    """``model.npz`` (reproducible bytes) and ``manifest.json`` with the npz's SHA-256."""
    folder.mkdir(parents=True, exist_ok=True)
    npz = _npz_bytes(arrays)
    text = json.dumps({**manifest, "npz_sha256": hashlib.sha256(npz).hexdigest()},
                      ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    (folder / "model.npz").write_bytes(npz)
    (folder / "manifest.json").write_text(text, encoding="utf-8")
    return folder / "model.npz", folder / "manifest.json"


def read_model_files(where: Path | Traversable, fmt: int, missing: str
                     ) -> tuple[dict[str, Any], bytes]:
    """The manifest and the npz bytes in ``where``, checked: both present (else ``missing``),
    the format, and the npz against its SHA-256 in the manifest."""
    man_file, npz_file = where.joinpath("manifest.json"), where.joinpath("model.npz")
    if not (man_file.is_file() and npz_file.is_file()):
        raise ConfigError(f"{where}: {missing}")
    manifest = json.loads(man_file.read_text(encoding="utf-8"))
    data = npz_file.read_bytes()
    if manifest.get("format") != fmt:
        raise ConfigError(f"{man_file}: format {manifest.get('format')!r}, expected {fmt}")
    if hashlib.sha256(data).hexdigest() != manifest.get("npz_sha256"):
        raise ConfigError(f"{npz_file}: does not match its manifest (retrain the model)")
    return manifest, data


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz numpy can read, with fixed member order and timestamps (reproducible bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue(), compresslevel=9)
    return buf.getvalue()


# --- training --------------------------------------------------------------------------------


def libraries() -> dict[str, str]:
    import opencc
    import scipy
    import sklearn

    return {"numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
            "opencc": getattr(opencc, "__version__", "unknown")}


def params() -> dict[str, Any]:
    return {"ngrams": list(NGRAMS), "c_grid": list(C_GRID), "model": "logistic_regression",
            "solver": "liblinear", "class_weight": "balanced", "features": "binary_l2",
            "digits": "as_0", "threshold": "max_f1_on_dev", "length_floor": LENGTH_FLOOR,
            "min_evidence": MIN_EVIDENCE,
            "any_violation": {"c": ANY_C, "recall": ANY_RECALL, "folds": _FOLDS}}


def train(corpus: Corpus, taxonomy: Taxonomy) -> TextModel:
    """One model per side from ``corpus``'s train split; C and thresholds chosen on dev."""
    from threadpoolctl import threadpool_limits

    libs, prm = libraries(), params()
    key = json.dumps([corpus.digest, prm, libs, taxonomy.version], sort_keys=True)
    manifest: dict[str, Any] = {
        "format": FORMAT, "version": hashlib.sha256(key.encode()).hexdigest()[:16],
        "taxonomy_version": taxonomy.version, "corpus_sha256": corpus.digest,
        "params": prm, "libraries": libs, "sides": {}}
    sides = {}
    with threadpool_limits(1):
        for side in ("customer", "advisor"):
            train_items = [i for i in corpus.items if i.side == side and i.split == "train"]
            dev_items = [i for i in corpus.items if i.side == side and i.split == "dev"]
            model, meta = _train_side(side, train_items, dev_items, taxonomy)
            sides[side] = model
            manifest["sides"][side] = meta
    return TextModel(manifest, sides)


def _normalised(items: Sequence[CorpusItem]) -> list[str]:
    return normalise_many([i.text for i in items])


def _targets(items: Sequence[CorpusItem], labels: list[tuple[str, str]]) -> np.ndarray:
    y = np.zeros((len(items), len(labels)), dtype=bool)
    for r, item in enumerate(items):
        for c, (fam, label) in enumerate(labels):
            y[r, c] = label in item.labels[fam]
    return y


def _train_side(side: str, train_items: list[CorpusItem], dev_items: list[CorpusItem],
                taxonomy: Taxonomy) -> tuple[SideModel, dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression

    labels = [(fam, label) for fam in taxonomy.families_of(side)  # type: ignore[arg-type]
              for label in taxonomy.ids(fam)]
    feats = [feature_text(s) for s in _normalised(train_items)]
    vocab = sorted({g for s in feats for g, _ in grams(s)})
    empty = SideModel(side, labels, vocab, np.zeros((len(vocab), len(labels)), np.float32),
                      np.zeros(len(labels), np.float32), np.zeros(len(labels), np.float32))
    x_train = _matrix(empty, feats)
    x_dev = _matrix(empty, [feature_text(s) for s in _normalised(dev_items)])
    y_train, y_dev = _targets(train_items, labels), _targets(dev_items, labels)
    weights = np.zeros((len(vocab), len(labels)), np.float64)
    intercepts = np.zeros(len(labels), np.float64)
    thresholds = np.zeros(len(labels), np.float64)
    untrained, chosen_c = [], {}
    for fam in taxonomy.families_of(side):  # type: ignore[arg-type]
        cols = [c for c, (f, _) in enumerate(labels) if f == fam]
        best: tuple[float, float, dict[int, tuple[np.ndarray, float]]] | None = None
        for c_value in C_GRID:
            fitted: dict[int, tuple[np.ndarray, float]] = {}
            for c in cols:
                y = y_train[:, c]
                if y.all() or not y.any():
                    continue
                lr = LogisticRegression(C=c_value, class_weight="balanced", solver="liblinear",
                                        random_state=0, max_iter=1000)
                lr.fit(x_train, y)
                fitted[c] = (lr.coef_[0].astype(np.float32), float(np.float32(lr.intercept_[0])))
            score = _micro_f1(x_dev, y_dev, fitted, cols)
            if best is None or score > best[0] + 1e-12:
                best = (score, c_value, fitted)
        assert best is not None
        chosen_c[fam] = best[1]
        for c in cols:
            if c not in best[2]:
                untrained.append(labels[c][1])
                intercepts[c], thresholds[c] = -10.0, math.inf
                continue
            weights[:, c], intercepts[c] = best[2][c]
            margins = np.asarray(x_dev @ weights[:, c].astype(np.float32)) + np.float32(
                intercepts[c])
            thresholds[c] = _threshold(margins, y_dev[:, c],
                                       floor=float(intercepts[c]) + MIN_EVIDENCE)
    if side == "advisor":
        w_any, b_any, cut = _any_violation(x_train, y_train.any(axis=1), train_items)
        labels.append(ANY)
        weights = np.hstack([weights, w_any[:, None]])
        intercepts, thresholds = np.append(intercepts, b_any), np.append(thresholds, cut)
    model = SideModel(side, labels, vocab, weights.astype(np.float32),
                      intercepts.astype(np.float32), thresholds.astype(np.float32))
    meta = {"labels": [list(x) for x in labels], "train_items": len(train_items),
            "dev_items": len(dev_items), "vocab": len(vocab), "c": chosen_c,
            "untrained": untrained}
    return model, meta


def _any_violation(x: Any, y: np.ndarray, items: Sequence[CorpusItem]
                   ) -> tuple[np.ndarray, float, float]:
    """Weights and intercept of "any violation" on the train split, and its threshold: the
    highest margin at which the out-of-fold margins (5 folds by page, so no page's lines
    are scored by a model that saw them) still reach ``ANY_RECALL`` of the violations."""
    from sklearn.linear_model import LogisticRegression

    def fit(rows: np.ndarray) -> LogisticRegression:
        return LogisticRegression(C=ANY_C, class_weight="balanced", solver="liblinear",
                                  random_state=0, max_iter=1000).fit(x[rows], y[rows])

    fold = np.array([int.from_bytes(hashlib.sha256(i.url.encode()).digest()[:4], "big") % _FOLDS
                     for i in items])
    oof = np.zeros(len(items))
    for k in range(_FOLDS):
        held = fold == k
        if held.any() and y[~held].any() and not y[~held].all():
            oof[held] = fit(~held).decision_function(x[held])
    positives = np.sort(oof[y])[::-1]
    cut = float(positives[max(0, math.ceil(ANY_RECALL * len(positives)) - 1)]) if len(
        positives) else 0.0
    final = fit(np.ones(len(items), bool))
    return final.coef_[0].astype(np.float32), float(np.float32(final.intercept_[0])), cut


def _matrix(model: SideModel, feature_texts: list[str]) -> Any:
    from scipy.sparse import csr_matrix

    encoded = model.encode(feature_texts)
    rows = [r for r, (c, _) in enumerate(encoded) for _ in c]
    cols = [j for c, _ in encoded for j in c]
    data = [feature_value(len(c)) for c, _ in encoded for _ in c]
    return csr_matrix((np.array(data, np.float32), (rows, cols)),
                      shape=(len(feature_texts), len(model.vocab)), dtype=np.float32)


def _micro_f1(x: Any, y: np.ndarray, fitted: dict[int, tuple[np.ndarray, float]],
              cols: list[int]) -> float:
    tp = fp = fn = 0
    for c in cols:
        truth = y[:, c]
        if c in fitted:
            pred = np.asarray(x @ fitted[c][0]) + fitted[c][1] >= 0
        else:
            pred = np.zeros(len(truth), bool)
        tp += int((pred & truth).sum())
        fp += int((pred & ~truth).sum())
        fn += int((~pred & truth).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _threshold(margins: np.ndarray, truth: np.ndarray, floor: float = -math.inf) -> float:
    """The margin cut with the best F1 on dev (ties: nearest 0); 0 without a positive. No cut
    below ``floor``: a message without evidence (its margin is the intercept) stays
    unlabelled."""
    if truth.sum() < _MIN_DEV_POSITIVES:
        return 0.0
    values = np.unique(margins)
    cuts = np.concatenate([[0.0], (values[1:] + values[:-1]) / 2, [values[0] - 1e-3]])
    best_cut, best_f1 = 0.0, -1.0
    for cut in cuts:
        pred = margins >= cut
        tp = int((pred & truth).sum())
        f1 = 2 * tp / (int(pred.sum()) + int(truth.sum()))
        if not max(_CUT_RANGE[0], floor) <= cut <= _CUT_RANGE[1]:
            continue
        if f1 > best_f1 + 1e-12 or (abs(f1 - best_f1) <= 1e-12 and abs(cut) < abs(best_cut)):
            best_cut, best_f1 = float(cut), f1
    return best_cut
