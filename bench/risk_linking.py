"""Company-linking throughput on one core: ``CompanyLinker.link`` beside a bare ``ChatTagger``
scan of the same name patterns (no codes, organisations, context or scoring), as reference.

    PYTHONPATH=src python bench/risk_linking.py [--rounds 200]

Text: the real headlines and snippets of ``tests/unit/risk/fixtures/headlines.jsonl`` (72
documents, each quoted from its public page), linked ``rounds`` times over. The issue's goal
for link + classify is >= 2,000 documents/s and >= 5 MB/s; this measures the linking half.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from caifu.text.companies import CompanyLinker
from caifu.text.tagging import ChatTagger, TextRule

FIXTURES = Path(__file__).resolve().parents[1] / "tests/unit/risk/fixtures/headlines.jsonl"


def _rate(fn, texts: list[str], rounds: int) -> tuple[float, float]:
    size = sum(len(t.encode("utf-8")) for t in texts)
    start = time.process_time()
    for _ in range(rounds):
        for text in texts:
            fn(text)
    seconds = time.process_time() - start
    return len(texts) * rounds / seconds, size * rounds / seconds / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    rounds = parser.parse_args().rounds
    texts = [json.loads(line)["text"] for line in FIXTURES.read_text("utf-8").splitlines()]
    started = time.perf_counter()
    linker = CompanyLinker()
    built = time.perf_counter() - started
    names = list(linker._names)  # noqa: SLF001 - the very same patterns, for the reference scan
    tagger = ChatTagger([TextRule("company", tuple(names), negatable=False)])
    avg = sum(len(t) for t in texts) / len(texts)
    print(f"{len(texts)} documents, {avg:.0f} characters on average; linker built in "  # noqa: T201
          f"{built:.2f} s over {linker.pattern_count} names")
    link_docs, link_mb = _rate(linker.link, texts, rounds)
    scan_docs, scan_mb = _rate(tagger.tag, texts, rounds)
    for label, docs, mb in (("CompanyLinker.link", link_docs, link_mb),
                            ("ChatTagger scan (reference)", scan_docs, scan_mb)):
        print(f"{label:<30} {docs:>9,.0f} docs/s {mb:>7.2f} MB/s")  # noqa: T201
    print(f"linker / bare scan: {link_docs / scan_docs:.2f}")  # noqa: T201


if __name__ == "__main__":
    main()
