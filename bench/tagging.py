"""Chat tagging: throughput on one core beside a bare Aho-Corasick scan, and quality on demo chats.

    python bench/tagging.py                      # demo broker of 20,000 customers, seed 7
    python bench/tagging.py --customers 5000 --min-seconds 1
    python bench/tagging.py --hybrid             # lexicon + linear model (bench/_hybrid_tagging.py)

Data: ``caifu demo-data --customers N --seed S`` (cached in ``.bench/data/tagging-N-S``): its
chat messages, its securities and fund products as the tenant's master data (so the tagger
carries every security and fund name and code, ~12k patterns), and
``_ground_truth/chat_labels.parquet``, the intent the generator used for each message.

**(a) Throughput**, pinned to one CPU, single thread, best of ``--rounds`` passes over all
non-empty messages (each pass at least ``--min-seconds``):

* caifu: ``ChatTagger.tag_batch`` (normalise + scan + token edges + longest match + negation
  + hits with evidence);
* reference: ``normalise_many`` + a bare ``pyahocorasick`` ``iter`` over the same normalised
  patterns, counting matches: no edges, no overlap resolution, no negation, no hit objects.

Goal ≥ 50,000 messages/s/core (DESIGN.md, "Performance reference"). The machine is shared: the
CPU other processes used during the timed passes is reported.

**(b) Quality** on the demo's text messages against its ground truth
(``_ground_truth/chat_labels.parquet``: each message is a line of the labelled corpus's train
split, or two with the same labels, and carries the corpus's labels), per taxonomy family:

* ``dictionary``: the dictionary hits above, mapped onto taxonomy ids
  (``caifu.text.hybrid.DICTIONARY_TO_TAXONOMY``; a tenant's ``security.*``/``fund.*`` are not
  corpus labels and are left out);
* ``hybrid``: ``HybridTagger`` (dictionaries + lexicon + the shipped model) on the customer's
  messages, and on the advisor's for ``violations``.

precision = TP / (TP + FP), recall = TP / (TP + FN), over (message, label) pairs. The demo's
lines are the model's training lines: these figures flatter the model; the test split
(``caifu text evaluate``) is the honest measure. Results: printed, and written to
``.bench/results/tagging-*.json``; summary in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
from _measure import busy_cpu, speed_table
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from caifu.text import ChatTagger, TextHit, normalise, seed_rules
from caifu.text.hybrid import DICTIONARY_TO_TAXONOMY, HybridTagger
from caifu.text.normalise import normalise_many
from caifu.text.taxonomy import default_taxonomy

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench"
GOAL = 50_000

# Paraphrases written for this bench after the dictionaries, never used to tune them: a small,
# honest check on wording the demo templates do not contain. (text, tags that should be found)
PARAPHRASES: tuple[tuple[str, frozenset[str]], ...] = tuple((t, frozenset(e)) for t, e in (
    ("创业板的权限我想开一下，需要啥条件", {"board.chinext", "intent.open_permission"}),
    ("能不能帮我把创业板开了", {"board.chinext", "intent.open_permission"}),
    ("我对创业板没兴趣", set()),
    ("创业板风险太高了，先不开了", set()),
    ("科创板怎么开通啊", {"board.star", "intent.open_permission"}),
    ("北交所的股票能买吗", {"board.bse"}),
    ("想看逐笔成交，L2怎么收费", {"intent.level2", "intent.fee"}),
    ("level2行情能免费试用吗", {"intent.level2"}),
    ("我那个基金想全部卖掉", {"intent.redeem"}),
    ("基金赎回要几天到账", {"intent.redeem"}),
    ("茅台跌成这样还能补仓吗", {"security.600519", "board.main", "intent.add"}),
    ("宁德时代可以加点吗", {"security.300750", "board.chinext", "intent.add"}),
    ("佣金能降到万一吗", {"intent.fee"}),
    ("开户要带身份证吗", {"intent.open_account"}),
    ("帮我老婆也开个账户", {"intent.open_account"}),
    ("你们推荐的基金亏了30%，我要去证监会投诉你们", {"emotion.complaint", "emotion.loss_anxiety"}),
    ("最近睡不着觉，账户亏了一大半", {"emotion.loss_anxiety"}),
    ("心态崩了", {"emotion.loss_anxiety"}),
    ("沪深300现在能定投吗", {"index.csi300"}),
    ("510300和159919有什么区别", {"index.csi300", "security.510300", "security.159919"}),
    ("纳指最近涨太多了", {"index.nasdaq100"}),
    ("半导体板块还能上车吗", {"industry.半导体", "intent.add"}),
    ("光伏这两年太惨了", {"theme.光伏"}),
    ("我不太懂科创50ETF是什么", {"index.star50", "security.588000"}),
    ("不想再买医药了", set()),
    ("白酒还值得拿吗", {"industry.白酒"}),
    ("银行卡绑定怎么改", set()),
    ("今天上证指数跌破3000点", {"index.sse"}),
    ("我想咨询一下费率", {"intent.fee"}),
    ("谢谢你，辛苦了", set()),
    ("请问怎么开通融资融券", {"intent.open_permission"}),
    ("港股通权限怎么开", {"intent.open_permission"}),
    ("这个月亏了两万多，好焦虑", {"emotion.loss_anxiety"}),
    ("ＣＨＩＮＥＸＴ账户开好了吗", {"board.chinext"}),
    ("688981今天怎么样", {"security.688981", "board.star"}),
    ("我不考虑买新能源", set()),
    ("新能源车ETF能买吗", {"theme.新能源汽车", "security.515030"}),
    ("券商股要不要加仓", {"industry.证券", "intent.add"}),
    ("我想把钱取出来", set()),
    ("你们服务太差了，我要换券商", {"emotion.complaint"}),
))


def paraphrase_quality(tagger: ChatTagger) -> dict:
    fam: dict[str, Counter] = defaultdict(Counter)
    misses, false_pos = [], []
    for text, expected in PARAPHRASES:
        found = {h.tag for h in tagger.tag(text)}
        for tag in expected:
            fam[family(tag)]["expected"] += 1
            fam[family(tag)]["tp" if tag in found else "fn"] += 1
            if tag not in found:
                misses.append(f"{text} → {tag}")
        for tag in found - expected:
            fam[family(tag)]["fp"] += 1
            false_pos.append(f"{text} → {tag}")
    return {"families": fam, "misses": misses, "false_pos": false_pos}


def family(tag: str) -> str:
    head = tag.split(".", 1)[0]
    return "theme" if head == "industry" else head


# --- data ----------------------------------------------------------------------------------


def demo_data(customers: int, seed: int, console: Console) -> Path:
    out = CACHE / "data" / f"tagging-{customers}-{seed}"
    if (out / "_ground_truth" / "chat_labels.parquet").exists() and "corpus_ids" in \
            pq.read_schema(out / "_ground_truth" / "chat_labels.parquet").names:
        return out
    cli = shutil.which("caifu") or str(Path(sys.executable).with_name("caifu"))
    console.print(f"generating demo broker: {customers:,} customers, seed {seed} → {out}")
    subprocess.run([cli, "demo-data", "--customers", str(customers), "--seed", str(seed),
                    "--out", str(out)], check=True)
    return out


def load(folder: Path) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    chats = pa.concat_tables(pajson.read_json(p) for p in sorted(folder.glob("chat_messages*.jsonl")))
    labels = pq.read_table(folder / "_ground_truth" / "chat_labels.parquet")
    securities = pq.read_table(folder / "securities.parquet")
    funds = pacsv.read_csv(folder / "fund_products.csv", convert_options=pacsv.ConvertOptions(
        column_types={"fund_code": pa.string()}))
    return chats, labels, securities, funds


# --- (a) throughput ------------------------------------------------------------------------


def wait_quiet(limit: float, console: Console) -> None:
    """Other sessions share this machine: wait (up to ``limit`` s) until it is nearly idle."""
    import psutil

    t0 = time.perf_counter()
    while True:
        busy = psutil.cpu_percent(interval=3) / 100 * (os.cpu_count() or 1)
        if busy < 0.25:
            return
        waited = time.perf_counter() - t0
        if waited > limit:
            console.print(f"  [yellow]machine still busy ({busy:.1f} cores); measuring anyway")
            return
        if waited < 4:
            console.print(f"  machine busy ({busy:.1f} cores in use); waiting up to {limit:.0f} s")


def one_pass(fn, texts: list[str], min_seconds: float) -> dict:  # type: ignore[no-untyped-def]
    """Messages/s of ``fn`` over ``texts``, repeated for at least ``min_seconds``."""
    n, cpu0, wall0, busy0 = 0, time.process_time(), time.perf_counter(), busy_cpu()
    while True:
        fn(texts)
        n += len(texts)
        if time.perf_counter() - wall0 >= min_seconds:
            break
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"cpu": n / cpu, "wall": n / wall,
            "background": max(0.0, (busy_cpu() - busy0 - cpu) / wall)}


def timed(fns: dict, texts: list[str], rounds: int, min_seconds: float,  # type: ignore[type-arg]
          progress: Progress) -> dict[str, dict]:
    """Best of ``rounds`` for each function, the functions interleaved round by round."""
    passes: dict[str, list[dict]] = defaultdict(list)
    task = progress.add_task("throughput", total=rounds * len(fns))
    for _ in range(rounds):
        for name, fn in fns.items():
            passes[name].append(one_pass(fn, texts, min_seconds))
            progress.advance(task)
    return {name: {"msgs_per_cpu_s": max(p["cpu"] for p in ps),
                   "msgs_per_wall_s": max(p["wall"] for p in ps),
                   "background_cores": sum(p["background"] for p in ps) / len(ps)}
            for name, ps in passes.items()}


def reference_scanner(tagger_rules: list) -> tuple:  # type: ignore[type-arg]
    import ahocorasick

    automaton = ahocorasick.Automaton()
    for rule in tagger_rules:
        for pattern in rule.patterns:
            automaton.add_word(normalise(pattern.rstrip("#")), rule.tag)
    automaton.make_automaton()

    def scan(texts: list[str]) -> int:
        found = 0
        for s in normalise_many(texts):
            for _ in automaton.iter(s):
                found += 1
        return found

    return automaton, scan


# --- (b) quality ---------------------------------------------------------------------------


FAMILIES = ("interests", "intents", "emotions", "violations")
FAMILY_IDS = {f: set(default_taxonomy().ids(f)) for f in FAMILIES}


def hybrid_tags(chats: pa.Table, securities: pa.Table, funds: pa.Table) -> dict:  # type: ignore[type-arg]
    """msg_id → the HybridTagger's tags, customer and advisor text messages."""
    tagger = HybridTagger.load(securities=securities, funds=funds)
    out = {}
    for side in ("customer", "advisor"):
        rows = [(m, c) for m, s, t, c in zip(
            chats["msg_id"].to_pylist(), chats["sender"].to_pylist(),
            chats["msg_type"].to_pylist(), chats["content"].to_pylist(), strict=True)
            if s == side and t == "text" and c]
        tags = tagger.tag_batch([c for _, c in rows], side, evidence=False)
        out.update({m: t for (m, _), t in zip(rows, tags, strict=True)})
    return out


def quality(chats: pa.Table, labels: pa.Table, hits: list[list[TextHit]],
            hybrid: dict[str, list]) -> dict:  # type: ignore[type-arg]
    """Per (tagger, family) TP/FP/FN against the ground truth, and FP/FN examples."""
    truth = {r["msg_id"]: r for r in labels.to_pylist()}
    fam: dict[str, Counter] = defaultdict(Counter)
    per_label: dict[str, Counter] = defaultdict(Counter)
    examples: dict[str, list[str]] = defaultdict(list)
    rows = zip(chats["msg_id"].to_pylist(), chats["sender"].to_pylist(),
               chats["msg_type"].to_pylist(), chats["content"].to_pylist(), hits, strict=True)
    for msg_id, sender, mtype, content, found in rows:
        gt = truth[msg_id]
        if mtype != "text" or not content or not gt["corpus_ids"]:
            continue
        families = ("violations",) if sender == "advisor" else FAMILIES[:3]
        tags = hybrid[msg_id] if msg_id in hybrid else None
        for f in families:
            expected = set(gt[f])
            got = {"hybrid": set(getattr(tags, f)) if tags is not None else None}
            if sender == "customer":
                got["dictionary"] = {DICTIONARY_TO_TAXONOMY[h.tag] for h in found
                                     if h.tag in DICTIONARY_TO_TAXONOMY
                                     and DICTIONARY_TO_TAXONOMY[h.tag] in FAMILY_IDS[f]}
            for name, pred in got.items():
                if pred is None:
                    continue
                pred = {x for x in pred if not x.startswith(("security:", "fund:"))}
                c = fam[f"{name} {f}"]
                c["tp"] += len(pred & expected)
                c["fp"] += len(pred - expected)
                c["fn"] += len(expected - pred)
                c["expected"] += len(expected)
                if name == "hybrid":
                    per_label[gt["label"]]["messages"] += f == families[0]
                    per_label[gt["label"]]["missed"] += len(expected - pred)
                    per_label[gt["label"]]["false_pos"] += len(pred - expected)
                    for x in pred - expected:
                        if len(examples[f"FP {x}"]) < 3:
                            examples[f"FP {x}"].append(content)
                    for x in expected - pred:
                        if len(examples[f"FN {x}"]) < 3:
                            examples[f"FN {x}"].append(content)
    return {"families": fam, "labels": per_label, "examples": examples}


def pr(c: Counter) -> tuple[str, str]:
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else float("nan")
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else float("nan")
    return f"{p:.3f}", f"{r:.3f}"


# --- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--cpu", type=int, help="CPU to pin to (default: the first allowed)")
    parser.add_argument("--quiet-wait", type=float, default=300,
                        help="seconds to wait for other processes to go idle before timing")
    parser.add_argument("--hybrid", action="store_true",
                        help="time the hybrid tagger on the corpus instead (_hybrid_tagging.py)")
    parser.add_argument("--corpus", type=Path, help="--hybrid: corpus folder [the package's]")
    parser.add_argument("--model", type=Path, help="--hybrid: model folder [the package's]")
    args = parser.parse_args()
    console = Console()
    if args.hybrid:
        import _hybrid_tagging

        _hybrid_tagging.run(args, console, timed, wait_quiet, CACHE)
        return

    cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    folder = demo_data(args.customers, args.seed, console)
    chats, labels, securities, funds = load(folder)
    contents = chats["content"].to_pylist()
    texts = [c for c in contents if c]

    t0 = time.perf_counter()
    rules = seed_rules(securities, funds)
    tagger = ChatTagger(rules)
    build_s = time.perf_counter() - t0
    _, ref_scan = reference_scanner(rules)
    console.print(f"{len(texts):,} non-empty messages of {chats.num_rows:,}; "
                  f"{tagger.pattern_count:,} patterns, {len(tagger.tags):,} tags, "
                  f"{len(rules):,} rules; build {build_s:.2f} s; pinned to CPU {cpu}")

    wait_quiet(args.quiet_wait, console)
    fns = {"caifu tag_batch": tagger.tag_batch,
           "caifu tag (one by one)": lambda ts: [tagger.tag(t) for t in ts],
           "reference: normalise + bare AC scan": ref_scan}
    with Progress(console=console, transient=True) as progress:
        speed = timed(fns, texts, args.rounds, args.min_seconds, progress)
        progress.add_task("quality", total=None)
        hits = tagger.tag_batch(contents)
        q = quality(chats, labels, hits, hybrid_tags(chats, securities, funds))
    ours, single, ref = (speed[name] for name in fns)

    console.print(speed_table("(a) throughput, one core, single thread", speed))
    ratio = ours["msgs_per_cpu_s"] / ref["msgs_per_cpu_s"]
    verdict = "met" if ours["msgs_per_cpu_s"] >= GOAL else "NOT met"
    console.print(f"caifu / reference = {ratio:.2f}; goal ≥ {GOAL:,} msgs/s/core: {verdict}")

    table = Table(title="(b) quality per tagger and family against the demo's ground truth "
                        "(corpus train lines: flatters the model)")
    for col in ("tagger family", "expected", "TP", "FP", "precision", "recall"):
        table.add_column(col, justify="right")
    for name in sorted(q["families"]):
        c = q["families"][name]
        table.add_row(name, f"{c['expected']:,}", f"{c['tp']:,}", f"{c['fp']:,}", *pr(c))
    console.print(table)
    table = Table(title="hybrid, per demo scenario")
    for col in ("scenario", "messages", "missed", "false pos."):
        table.add_column(col, justify="right")
    for label in sorted(q["labels"]):
        c = q["labels"][label]
        table.add_row(label, f"{c['messages']:,}", f"{c['missed']:,}", f"{c['false_pos']:,}")
    console.print(table)
    para = paraphrase_quality(tagger)
    table = Table(title=f"(b') {len(PARAPHRASES)} hand-written paraphrases (not used for tuning)")
    for col in ("family", "expected", "TP", "FP", "precision", "recall"):
        table.add_column(col, justify="right")
    for name in sorted(para["families"]):
        c = para["families"][name]
        table.add_row(name, f"{c['expected']:,}", f"{c['tp']:,}", f"{c['fp']:,}", *pr(c))
    total = sum((c for c in para["families"].values()), Counter())
    table.add_row("all", f"{total['expected']:,}", f"{total['tp']:,}", f"{total['fp']:,}",
                  *pr(total))
    console.print(table)
    console.print(f"  missed: {para['misses']}")
    console.print(f"  false positives: {para['false_pos']}")
    for key, texts_ in sorted(q["examples"].items())[:16]:
        console.print(f"  {key}: {texts_}")

    import psutil

    result = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "pinned_cpu": cpu, "python": platform.python_version(),
                    "platform": platform.platform(), "memory_gb": psutil.virtual_memory().total / 2**30,
                    "loadavg": os.getloadavg()},
        "data": {"customers": args.customers, "seed": args.seed, "messages": chats.num_rows,
                 "non_empty": len(texts)},
        "patterns": tagger.pattern_count, "tags": len(tagger.tags), "rules": len(rules),
        "build_s": build_s, "caifu": ours, "caifu_single": single, "reference": ref,
        "ratio": ratio, "goal_msgs_s": GOAL,
        "paraphrases": {"families": {k: dict(v) for k, v in para["families"].items()},
                        "misses": para["misses"], "false_pos": para["false_pos"]},
        "quality": {k: {kk: dict(vv) for kk, vv in q[k].items()} for k in ("families", "labels")},
    }
    out = CACHE / "results" / f"tagging-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1))
    console.print(f"results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
