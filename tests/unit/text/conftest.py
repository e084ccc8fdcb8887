"""A small real corpus (verbatim lines of the packaged one) and a model trained on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from caifu.text.classifier import TextModel
from caifu.text.corpus import Corpus, load_corpus
from caifu.text.hybrid import fit
from caifu.text.taxonomy import default_taxonomy

FIXTURE = Path(__file__).parent / "corpus_fixture"


@pytest.fixture(scope="session")
def fixture_corpus() -> Corpus:
    return load_corpus(FIXTURE, default_taxonomy())


@pytest.fixture(scope="session")
def fixture_model(fixture_corpus: Corpus) -> TextModel:
    return fit(fixture_corpus, default_taxonomy())
