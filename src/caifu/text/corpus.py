"""The labelled chat corpus: load, validate, split by source page.

The corpus is ``caifu/data/text/corpus/*.jsonl`` (format and labelling guide in
``caifu/data/text/README.md``); a tenant's own labelled examples use the same format in one
file of its workspace and join the train split. ``load_corpus`` checks every rule of the
README and raises one ``ConfigError`` listing every problem as ``file:line: field: problem``:

- a JSON object per line with ``id side text url script labels`` (``note`` optional);
- ``side`` ``customer``/``advisor``; ``script`` ``simplified``/``traditional``;
- ``text`` a non-empty string of at most 150 characters; ids and texts unique;
- ``url`` an http(s) address; at most 8 snippets per page;
- ``labels`` has the four families, each a list of the taxonomy's ids for that family;
  a customer's ``violations`` and an advisor's ``interests``/``intents``/``emotions`` are
  empty.

``split_of(url)`` is ``train``, ``dev`` or ``test`` (≈ 70/15/15) from the SHA-256 of the page's
canonical address (scheme, ``www.``, fragment and a trailing ``/`` ignored), so a page never
straddles splits and removing a line changes no other line's split; it lives in
``caifu.data.corpus_split`` because the demo broker (data layer) reads the train split too.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from caifu.core.errors import ConfigError
from caifu.data.corpus_split import Split, canonical_url, split_of
from caifu.text.taxonomy import FAMILIES, Taxonomy

__all__ = ["MAX_CHARS", "MAX_PER_PAGE", "Corpus", "CorpusItem", "canonical_url",
           "load_corpus", "load_examples", "packaged_corpus_dir", "split_of"]

MAX_CHARS = 150
MAX_PER_PAGE = 8
_FIELDS = ("id", "side", "text", "url", "script", "labels")
_OPTIONAL = ("note",)
_SCRIPTS = ("simplified", "traditional")
_MAX_SHOWN = 25


@dataclass(frozen=True)
class CorpusItem:
    id: str
    side: str
    text: str
    url: str
    script: str
    labels: dict[str, tuple[str, ...]]
    source: str  # file:line
    tenant: bool = False  # a tenant's added example (always in train)

    @property
    def split(self) -> Split:
        return "train" if self.tenant else split_of(self.url)


@dataclass(frozen=True)
class Corpus:
    items: tuple[CorpusItem, ...]
    digest: str  # SHA-256 over the files' bytes, in name order

    def split(self, name: str, side: str | None = None) -> list[CorpusItem]:
        return [i for i in self.items if i.split == name and (side is None or i.side == side)]

    def with_examples(self, extra: Corpus) -> Corpus:
        """This corpus plus a tenant's examples (train only); ids and texts stay unique."""
        ids = {i.id for i in self.items}
        texts = {i.text for i in self.items}
        problems = [f"{e.source}: id: {e.id!r} is already in the corpus" for e in extra.items
                    if e.id in ids]
        problems += [f"{e.source}: text: already in the corpus" for e in extra.items
                     if e.text in texts]
        _raise(problems, "tenant examples")
        digest = hashlib.sha256((self.digest + extra.digest).encode()).hexdigest()
        return Corpus(self.items + extra.items, digest)


def packaged_corpus_dir() -> Traversable:
    return files("caifu.data").joinpath("text", "corpus")


def load_corpus(directory: Path | Traversable | None, taxonomy: Taxonomy) -> Corpus:
    """Every ``*.jsonl`` in ``directory`` (the packaged corpus if None), validated."""
    folder = directory if directory is not None else packaged_corpus_dir()
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such corpus folder")
    paths = sorted((p for p in folder.iterdir() if p.name.endswith(".jsonl")),
                   key=lambda p: p.name)
    if not paths:
        raise ConfigError(f"{folder}: no *.jsonl corpus files")
    return _load([(p.name, p.read_bytes()) for p in paths], taxonomy, tenant=False)


def load_examples(path: Path, taxonomy: Taxonomy) -> Corpus:
    """A tenant's labelled examples (the corpus format), all for training."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file of labelled examples")
    return _load([(str(path), path.read_bytes())], taxonomy, tenant=True)


def _load(named: Sequence[tuple[str, bytes]], taxonomy: Taxonomy, tenant: bool) -> Corpus:
    digest = hashlib.sha256()
    items: list[CorpusItem] = []
    problems: list[str] = []
    for name, data in named:
        digest.update(name.encode() + b"\0" + data + b"\0")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            problems.append(f"{name}: not UTF-8 ({err})")
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            item = _item(line, f"{name}:{n}", taxonomy, problems, tenant)
            if item is not None:
                items.append(item)
    problems += _uniqueness(items)
    _raise(problems, "corpus")
    return Corpus(tuple(items), digest.hexdigest())


def _item(line: str, where: str, taxonomy: Taxonomy, problems: list[str],
          tenant: bool) -> CorpusItem | None:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        problems.append(f"{where}: not JSON ({err.msg} at column {err.colno})")
        return None
    if not isinstance(row, dict):
        problems.append(f"{where}: expected a JSON object")
        return None
    before = len(problems)
    missing = [f for f in _FIELDS if f not in row]
    extra = [f for f in row if f not in _FIELDS + _OPTIONAL]
    if missing:
        problems.append(f"{where}: missing field(s) {missing}")
    if extra:
        problems.append(f"{where}: unknown field(s) {extra}")
    if missing:
        return None
    for field in ("id", "text", "url"):
        if not isinstance(row[field], str) or not row[field].strip():
            problems.append(f"{where}: {field}: expected a non-empty string")
    if isinstance(row["text"], str) and len(row["text"]) > MAX_CHARS:
        problems.append(f"{where}: text: {len(row['text'])} characters, at most {MAX_CHARS}")
    if isinstance(row["url"], str) and not row["url"].startswith(("http://", "https://")):
        problems.append(f"{where}: url: expected an http(s) address, got {row['url']!r}")
    if row["side"] not in ("customer", "advisor"):
        problems.append(f"{where}: side: expected customer or advisor, got {row['side']!r}")
    if row["script"] not in _SCRIPTS:
        problems.append(f"{where}: script: expected simplified or traditional, "
                        f"got {row['script']!r}")
    labels = _labels(row["labels"], row["side"], where, taxonomy, problems)
    if len(problems) > before or labels is None:
        return None
    return CorpusItem(row["id"], row["side"], row["text"], row["url"], row["script"], labels,
                      where, tenant)


def _labels(raw: Any, side: Any, where: str, taxonomy: Taxonomy,
            problems: list[str]) -> dict[str, tuple[str, ...]] | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: labels: expected an object with {list(FAMILIES)}")
        return None
    missing = [f for f in FAMILIES if f not in raw]
    unknown = [f for f in raw if f not in FAMILIES]
    if missing or unknown:
        problems.append(f"{where}: labels: missing famil(ies) {missing}, unknown {unknown}")
        return None
    out: dict[str, tuple[str, ...]] = {}
    for fam in FAMILIES:
        values = raw[fam]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            problems.append(f"{where}: labels.{fam}: expected a list of label ids")
            return None
        allowed = set(taxonomy.ids(fam))
        bad = [v for v in values if v not in allowed]
        if bad:
            problems.append(f"{where}: labels.{fam}: {bad} not in the taxonomy's {fam} "
                            f"(version {taxonomy.version})")
        if len(set(values)) != len(values):
            problems.append(f"{where}: labels.{fam}: a label is listed twice")
        if values and side in ("customer", "advisor") and taxonomy.families[fam].side != side:
            article = "an" if side == "advisor" else "a"
            problems.append(f"{where}: labels.{fam}: must be empty for {article} {side} message "
                            f"({fam} are {taxonomy.families[fam].side} labels)")
        out[fam] = tuple(sorted(set(values)))
    return out


def _uniqueness(items: Iterable[CorpusItem]) -> list[str]:
    problems: list[str] = []
    first_id: dict[str, str] = {}
    first_text: dict[str, str] = {}
    pages: Counter[str] = Counter()
    for item in items:
        if item.id in first_id:
            problems.append(f"{item.source}: id: {item.id!r} already used at {first_id[item.id]}")
        first_id.setdefault(item.id, item.source)
        if item.text in first_text:
            problems.append(f"{item.source}: text: the same text is at {first_text[item.text]}")
        first_text.setdefault(item.text, item.source)
        if not item.tenant:
            pages[canonical_url(item.url)] += 1
    for page, n in sorted(pages.items()):
        if n > MAX_PER_PAGE:
            problems.append(f"url {page}: {n} snippets from one page, at most {MAX_PER_PAGE}")
    return problems


def _raise(problems: list[str], what: str) -> None:
    if not problems:
        return
    shown = problems[:_MAX_SHOWN]
    more = f"\n… and {len(problems) - _MAX_SHOWN} more" if len(problems) > _MAX_SHOWN else ""
    raise ConfigError(f"{what}: {len(problems)} problem(s):\n" + "\n".join(shown) + more)
