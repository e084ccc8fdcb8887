"""When two documents are one story: the same text exactly, or the same text re-posted.

The same announcement travels from the exchange to a dozen sites, each adding a dateline, a
byline, a "(文章来源:澎湃新闻)" line, dropping a sentence, or converting it to traditional
characters. Both tests run on the *matching text*: ``text.normalise`` (width, case,
traditional → simplified, one character for one), then only letters and digits kept, so
punctuation and spacing never make two copies differ.

- **exact**: the SHA-256 of the matching title and body (``content_hash``);
- **near**: MinHash signatures over character 4-shingles of title and body, compared by
  their estimated Jaccard similarity; candidates come from LSH bands (32 bands of 4 rows:
  a pair at similarity 0.5 becomes a candidate with probability 0.87, at 0.7 with 0.9998),
  stored in the system of record so the index grows across batches and stays per tenant.

Why MinHash (``datasketch``) rather than SimHash: a re-post keeps most of the text but may
cut or add whole paragraphs, which moves a 64-bit SimHash by many bits, while the Jaccard
similarity of shingle sets degrades in proportion and has a threshold one can state.
``datasketch`` is the maintained MinHash implementation for Python (releases through 2026,
numpy only); only its signatures are used — its ``MinHashLSH`` keeps the index in memory or
Redis, and the bands here live in SQL beside the stories. Its hash functions come from a
fixed seed, so a signature is the same in every process and on every run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
from datasketch import MinHash

from caifu.text.normalise import normalise

NUM_PERM = 128
BANDS, ROWS = 32, 4  # BANDS * ROWS == NUM_PERM
SHINGLE = 4
SEED = 1  # part of the stored signatures: changing it needs every signature recomputed
NEAR = 0.6  # estimated Jaccard at or above which a document joins a story
_NOT_WORD = re.compile(r"[\W_]+")


def matching_text(text: str) -> str:
    """Normalised (width, case, t2s) with everything but letters and digits removed."""
    return _NOT_WORD.sub("", normalise(text))


def content_hash(title: str, body: str) -> str:
    """SHA-256 of the matching title and body: equal exactly when the texts are one text."""
    joined = matching_text(title) + "\n" + matching_text(body)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def shingles(title: str, body: str) -> set[str]:
    text = matching_text(title) + matching_text(body)
    if len(text) <= SHINGLE:
        return {text}
    return {text[i:i + SHINGLE] for i in range(len(text) - SHINGLE + 1)}


def signature(title: str, body: str) -> bytes:
    """The MinHash signature, ``NUM_PERM`` little-endian uint32 values (512 bytes)."""
    m = MinHash(num_perm=NUM_PERM, seed=SEED)
    m.update_batch([s.encode("utf-8") for s in sorted(shingles(title, body))])
    # datasketch keeps values below 2**32 in uint64; stored as uint32 they take half the room
    return bytes(m.hashvalues.astype("<u4").tobytes())


def _values(sig: bytes) -> np.ndarray:
    return np.frombuffer(sig, dtype="<u4")


def similarity(a: bytes, b: bytes) -> float:
    """The estimated Jaccard similarity of the two documents' shingle sets."""
    return float(np.count_nonzero(_values(a) == _values(b))) / NUM_PERM


def bands(sig: bytes) -> list[str]:
    """The LSH bucket keys of a signature: the band number and a digest of its rows."""
    v = _values(sig)
    return [f"{i:02d}" + hashlib.blake2b(v[i * ROWS:(i + 1) * ROWS].tobytes(),
                                         digest_size=8).hexdigest() for i in range(BANDS)]


def best_match(sig: bytes, candidates: Sequence[tuple[str, bytes]]) -> tuple[str, float] | None:
    """The candidate (key, signature) most similar to ``sig`` at or above ``NEAR``; ties go
    to the smallest key, so the choice does not depend on the order candidates came in."""
    scored = [(similarity(sig, s), key) for key, s in candidates]
    above = [(-score, key) for score, key in scored if score >= NEAR]
    if not above:
        return None
    score, key = min(above)
    return key, -score
