"""``bench/tagging.py --hybrid``: the hybrid tagger (dictionaries + lexicon + linear model) on
one core, beside the Aho-Corasick ``ChatTagger`` alone measured in the same run.

Messages: the corpus's texts (``--corpus``, default the package's; customer and advisor sides
each tagged as their side), every pass over all of them. Timed, best of ``--rounds``:

* hybrid: ``HybridTagger.tag_batch(texts, side)`` — normalise, dictionaries or compliance
  lexicon with clause negation, n-gram features, the linear model, thresholds, the lexicon
  gate: every message's labels, each message's evidence built when it is first read (what the
  profile build and the real-time path do: they read the evidence of the few hits they store);
* hybrid, evidence read for every message: the same, then every message's ``evidence`` (top
  n-grams with spans for each model label): what ``caifu text tag`` does before writing JSON;
* reference: ``ChatTagger.tag_batch`` with the seed dictionaries (the tagger that shipped
  before), customer texts and advisor texts alike.

Goal (issue 14): lexicon + linear model ≥ 20,000 messages/s on one core.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

from _measure import speed_table
from rich.console import Console
from rich.progress import Progress

from caifu.text import ChatTagger, seed_rules
from caifu.text.corpus import load_corpus
from caifu.text.hybrid import HybridTagger

GOAL = 20_000


def run(args: Any, console: Console, timed: Any, wait_quiet: Any, cache: Path) -> None:
    cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    tagger = HybridTagger.load(args.model)
    items = load_corpus(args.corpus, tagger.taxonomy).items
    customer = [i.text for i in items if i.side == "customer"]
    advisor = [i.text for i in items if i.side == "advisor"]
    texts = customer + advisor
    reference = ChatTagger(seed_rules())
    mean_len = sum(map(len, texts)) / len(texts)
    console.print(f"{len(customer):,} customer + {len(advisor):,} advisor messages (mean "
                  f"{mean_len:.1f} characters) per pass; model {tagger.versions['model']}; "
                  f"pinned to CPU {cpu}")

    def hybrid(read_evidence: bool):  # type: ignore[no-untyped-def]
        def fn(_: list[str]) -> None:
            tags = (tagger.tag_batch(customer, "customer")
                    + tagger.tag_batch(advisor, "advisor"))
            if read_evidence:
                for t in tags:
                    t.evidence  # noqa: B018 -- built on first read
        return fn

    fns = {"hybrid": hybrid(False), "hybrid, evidence read for every message": hybrid(True),
           "reference: ChatTagger alone": reference.tag_batch}
    wait_quiet(args.quiet_wait, console)
    with Progress(console=console, transient=True) as progress:
        speed = timed(fns, texts, args.rounds, args.min_seconds, progress)
    console.print(speed_table("hybrid tagger throughput, one core, single thread", speed))
    ours, ref = speed["hybrid"], speed["reference: ChatTagger alone"]
    ratio = ours["msgs_per_cpu_s"] / ref["msgs_per_cpu_s"]
    verdict = "met" if ours["msgs_per_cpu_s"] >= GOAL else "NOT met"
    console.print(f"hybrid / reference = {ratio:.2f}; goal ≥ {GOAL:,} msgs/s/core: {verdict}")
    result = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "machine": {"cpus": os.cpu_count(), "pinned_cpu": cpu,
                          "python": platform.python_version(), "loadavg": os.getloadavg()},
              "messages": {"customer": len(customer), "advisor": len(advisor),
                           "mean_chars": mean_len},
              "versions": tagger.versions, "speed": speed, "ratio": ratio, "goal_msgs_s": GOAL}
    out = cache / "results" / f"tagging-hybrid-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1))
    console.print(f"results: {out}")
