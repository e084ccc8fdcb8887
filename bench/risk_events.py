"""Risk-event throughput on one core: company linking + event classification, what ``caifu risk
classify`` does per document, beside references measured in the same run.

    taskset -c 1 env PYTHONPATH=src python bench/risk_events.py [--rounds 5] [--min-seconds 2]
    PYTHONPATH=src python bench/risk_events.py --profile      # where the time goes (cProfile)

The process pins itself to one CPU (``--cpu``, default the highest it may use: ``taskset -c 1``
does the same from outside) and limits BLAS/OpenMP pools to one thread (``threadpoolctl``), so
the figures are per core.

**Documents**, two sets, each timed on its own:

* (a) *headlines/snippets*: the 903 texts of the shipped news corpus
  (``src/caifu/data/risk/corpus``; ≤ 200 characters, what the model was trained on);
* (b) *full documents*: the 9 real news items of ``tests/integration/risk/news_fixture.jsonl``,
  each ``title + "\\n" + body`` as the story pipeline joins them, repeated to 5,004 documents.

**Timed**, best of ``--rounds`` passes over a whole set (each pass repeated for at least
``--min-seconds``), CPU time of this process, the variants interleaved pass by pass; documents
in batches of 1,000 as ``caifu risk classify`` reads them:

* ``link + classify``: ``CompanyLinker.link`` on each document and
  ``EventClassifier.classify`` on the batch — the goal's "link + classify";
* ``link + classify + JSON``: the same and each output line built and serialised as
  ``caifu risk classify`` writes it (companies, event, evidence);
* ``classify`` alone, ``link`` alone;
* reference: ``normalise_many`` alone (fold + OpenCC t2s, the floor both steps start from).

docs/s and MB/s (UTF-8 bytes of the documents as given, the whole body, though the classifier
reads only its first ``LEAD_CHARS`` characters). Goal (issue 15): ≥ 2,000 documents/s and
≥ 5 MB/s, link + classify, one core. Results printed and written to
``.bench/results/risk-events-*.json``; summary in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _measure import busy_cpu
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from caifu.risk.corpus import load_news_corpus
from caifu.risk.events import default_classifier
from caifu.services.risk.linking import linker as shipped_linker
from caifu.text.normalise import normalise_many

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests/integration/risk/news_fixture.jsonl"
CACHE = ROOT / ".bench"
BATCH = 1000
DOCUMENTS = 5000
GOAL_DOCS, GOAL_MB = 2000, 5.0


def documents(n: int = DOCUMENTS) -> list[str]:
    rows = [json.loads(line) for line in FIXTURE.read_text("utf-8").splitlines() if line.strip()]
    texts = [f"{r['title']}\n{r['body']}" if r.get("body") else r["title"] for r in rows]
    return texts * -(-n // len(texts))  # every item the same number of times, >= n in all


def _batches(texts: list[str]) -> list[list[str]]:
    return [texts[i:i + BATCH] for i in range(0, len(texts), BATCH)]


def variants() -> dict[str, Callable[[list[str]], Any]]:
    classifier, linker = default_classifier(), shipped_linker()

    def link_classify(texts: list[str]) -> None:
        for batch in _batches(texts):
            classifier.classify(batch)
            for t in batch:
                linker.link(t)

    def link_classify_json(texts: list[str]) -> None:
        sink = io.StringIO()
        for batch in _batches(texts):
            for n, (t, e) in enumerate(zip(batch, classifier.classify(batch), strict=True)):
                companies = [{"name": m.name, "code": m.code if m.listed else None,
                              "listed": m.listed, "start": m.start, "end": m.end,
                              "rule": m.rule, "score": round(m.score, 3)} for m in linker.link(t)]
                sink.write(json.dumps({"id": n, "companies": companies, **e.as_json()},
                                      ensure_ascii=False) + "\n")

    def classify(texts: list[str]) -> None:
        for batch in _batches(texts):
            classifier.classify(batch)

    def link(texts: list[str]) -> None:
        for t in texts:
            linker.link(t)

    def normalise(texts: list[str]) -> None:
        for batch in _batches(texts):
            normalise_many(batch)

    return {"link + classify": link_classify, "link + classify + JSON": link_classify_json,
            "classify alone": classify, "link alone": link,
            "reference: normalise_many alone": normalise}


def one_pass(fn: Callable[[list[str]], Any], texts: list[str], min_seconds: float
             ) -> dict[str, float]:
    n, cpu0, wall0, busy0 = 0, time.process_time(), time.perf_counter(), busy_cpu()
    while True:
        fn(texts)
        n += 1
        cpu = time.process_time() - cpu0
        if cpu >= min_seconds:
            break
    wall = time.perf_counter() - wall0
    others = max(0.0, busy_cpu() - busy0 - cpu)
    return {"docs_per_cpu_s": n * len(texts) / cpu, "docs_per_wall_s": n * len(texts) / wall,
            "background_cores": others / wall}


def timed(texts: list[str], rounds: int, min_seconds: float) -> dict[str, dict[str, float]]:
    fns = variants()
    for fn in fns.values():
        fn(texts[:50])  # warm: OpenCC, the fold table, caches
    size = sum(len(t.encode("utf-8")) for t in texts) / len(texts)
    passes: dict[str, list[dict[str, float]]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            passes[name].append(one_pass(fn, texts, min_seconds))
    out = {}
    for name, ps in passes.items():
        docs = max(p["docs_per_cpu_s"] for p in ps)
        out[name] = {"docs_per_cpu_s": docs, "mb_per_cpu_s": docs * size / 1e6,
                     "docs_per_wall_s": max(p["docs_per_wall_s"] for p in ps),
                     "background_cores": sum(p["background_cores"] for p in ps) / len(ps)}
    return out


def table(title: str, speed: dict[str, dict[str, float]]) -> Table:
    t = Table(title=title)
    for col in ("", "docs/s (CPU)", "MB/s (CPU)", "docs/s (wall)", "background cores"):
        t.add_column(col, justify="right")
    for name, r in speed.items():
        t.add_row(name, f"{r['docs_per_cpu_s']:,.0f}", f"{r['mb_per_cpu_s']:.2f}",
                  f"{r['docs_per_wall_s']:,.0f}", f"{r['background_cores']:.2f}")
    return t


def _cprofile() -> Any:
    """The standard library's cProfile: ``bench/profile.py`` (first on the path when a bench
    script runs) would shadow the ``profile`` module cProfile imports."""
    here = str(Path(__file__).resolve().parent)
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if p not in ("", here)]
    try:
        import cProfile

        return cProfile
    finally:
        sys.path[:] = saved


def profile(texts: list[str], console: Console, top: int = 25) -> None:
    import pstats

    cprofile = _cprofile()
    fn = variants()["link + classify"]
    fn(texts[:50])
    prof = cprofile.Profile()
    prof.enable()
    fn(texts)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    console.print(out.getvalue(), highlight=False, markup=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--documents", type=int, default=DOCUMENTS)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--profile", action="store_true", help="cProfile link + classify")
    args = parser.parse_args()
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    console = Console(width=140)
    started = time.perf_counter()
    classifier, linker = default_classifier(), shipped_linker()
    built = time.perf_counter() - started
    sets = {"headlines/snippets (corpus)": [i.text for i in load_news_corpus().items],
            "full documents (news fixture)": documents(args.documents)}
    for name, texts in sets.items():
        chars = sum(map(len, texts)) / len(texts)
        size = sum(len(t.encode("utf-8")) for t in texts) / len(texts)
        console.print(f"{name}: {len(texts):,} documents, {chars:.0f} characters "
                      f"({size:.0f} UTF-8 bytes) on average", highlight=False)
    console.print(f"model {classifier.version}, linker over {linker.pattern_count:,} names "
                  f"(loaded in {built:.2f} s); pinned to CPU {cpu}", highlight=False)
    with threadpool_limits(1):
        if args.profile:
            for name, texts in sets.items():
                console.rule(f"cProfile, link + classify: {name}")
                profile(texts, console)
            return
        results = {}
        for name, texts in sets.items():
            speed = timed(texts, args.rounds, args.min_seconds)
            console.print(table(f"{name}, one core", speed))
            ours = speed["link + classify"]
            ref = speed["reference: normalise_many alone"]
            verdict = ("met" if ours["docs_per_cpu_s"] >= GOAL_DOCS
                       and ours["mb_per_cpu_s"] >= GOAL_MB else "NOT met")
            console.print(
                f"link + classify / normalise alone = "
                f"{ours['docs_per_cpu_s'] / ref['docs_per_cpu_s']:.2f}; link + classify / "
                f"link alone = {ours['docs_per_cpu_s'] / speed['link alone']['docs_per_cpu_s']:.2f}"
                f"; goal ≥ {GOAL_DOCS:,} docs/s and ≥ {GOAL_MB} MB/s: {verdict}",
                highlight=False)
            results[name] = {"documents": len(texts), "speed": speed}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True, check=False).stdout.strip()
    result = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "commit": commit,
              "machine": {"cpus": os.cpu_count(), "pinned_cpu": cpu,
                          "python": platform.python_version(), "loadavg": os.getloadavg()},
              "model": classifier.version, "results": results,
              "goal": {"docs_per_s": GOAL_DOCS, "mb_per_s": GOAL_MB}}
    out = CACHE / "results" / f"risk-events-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1))
    console.print(f"results: {out}")


if __name__ == "__main__":
    main()
