"""Which split a labelled chat snippet belongs to, from its page's address alone.

The labelled corpus (``caifu/data/text/corpus``) is split by source page so that no page is in
two splits: ``split_of(url)`` is ``train`` (70 %), ``dev`` (15 %) or ``test`` (15 %) from the
SHA-256 of the page's canonical address. It lives in the data layer because two layers read
the corpus: ``caifu.text.corpus`` (training and evaluation) and the demo broker
(``caifu.data.demo.chat_lines``, which draws its chats from the train split only).
"""

from __future__ import annotations

import hashlib
from typing import Literal
from urllib.parse import urlsplit

__all__ = ["Split", "canonical_url", "split_of"]

Split = Literal["train", "dev", "test"]


def canonical_url(url: str) -> str:
    """The page a URL names: scheme, ``www.``, fragment and a trailing ``/`` do not count."""
    parts = urlsplit(url.strip())
    host = parts.netloc.lower().removeprefix("www.")
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{path}{query}"


def split_of(url: str) -> Split:
    """``train`` (70 %), ``dev`` (15 %) or ``test`` (15 %), from the page's address alone."""
    bucket = int.from_bytes(hashlib.sha256(canonical_url(url).encode()).digest()[:8], "big")
    k = bucket % 100
    return "train" if k < 70 else "dev" if k < 85 else "test"
