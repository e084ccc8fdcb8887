"""The learned classifiers: reproducible bytes, no pickle, evidence that quotes the speaker."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from caifu.core.errors import ConfigError
from caifu.text.classifier import TextModel, feature_text
from caifu.text.corpus import Corpus
from caifu.text.hybrid import fit
from caifu.text.normalise import normalise
from caifu.text.taxonomy import default_taxonomy


def test_training_is_reproducible_bit_for_bit(tmp_path: Path, fixture_corpus: Corpus,
                                              fixture_model: TextModel) -> None:
    first = fixture_model.save(tmp_path / "a")
    second = fit(fixture_corpus, default_taxonomy()).save(tmp_path / "b")
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    manifest = json.loads(first[1].read_text(encoding="utf-8"))
    assert manifest["corpus_sha256"] == fixture_corpus.digest
    assert manifest["sides"]["customer"]["train_items"] == len(
        fixture_corpus.split("train", "customer"))
    assert set(manifest["libraries"]) == {"numpy", "scipy", "scikit-learn", "opencc"}
    assert first[0].stat().st_size < 3_000_000


def test_model_files_load_without_pickle_and_are_checked(tmp_path: Path,
                                                         fixture_model: TextModel) -> None:
    npz, manifest = fixture_model.save(tmp_path)
    with np.load(io.BytesIO(npz.read_bytes()), allow_pickle=False) as z:
        assert z["customer.weights"].dtype == np.float32
        assert z["customer.weights"].shape == (len(z["customer.vocab"]), 37)
    loaded = TextModel.load(tmp_path)
    assert loaded.version == fixture_model.version
    side = loaded.sides["customer"]
    assert np.array_equal(side.weights, fixture_model.sides["customer"].weights)
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 1
    npz.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=r"does not match its manifest"):
        TextModel.load(tmp_path)
    with pytest.raises(ConfigError, match=r"no trained model"):
        TextModel.load(tmp_path / "nowhere")


def test_evidence_ngrams_quote_the_original_text(fixture_model: TextModel) -> None:
    text = "基金贖回是什麼?可以隨時贖回嗎?"  # corpus line cv-0207 (traditional)
    side = fixture_model.sides["customer"]
    p = side.predict([normalise(text)])[0]
    column = [label for _, label in side.labels].index("redeem")
    assert p.margins[column] >= side.thresholds[column]
    top = side.explain(p, column)
    assert top and all(w > 0 for _, _, w in top)
    for gram, start, _ in top:
        quoted = text[start:start + len(gram)]
        assert feature_text(normalise(quoted)) == gram
    assert any(text[s:s + len(g)] == "贖回" and g == "赎回" for g, s, _ in top)
