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

**(b) Quality** on customer text messages, per tag family (theme and industry together).
Expected tags come from the message's label and from the template slots the generator filled
(each message is parsed back against its label's templates in ``caifu.data.demo.text``):

=============================  ======================================  ====================
label                          expected (must be found)                also accepted
=============================  ======================================  ====================
open_chinext(_traditional)     board.chinext, intent.open_permission
reject_chinext                 — (board.chinext is a false positive)
level2                         intent.level2                           intent.open_permission
redeem                         intent.redeem                           emotion.loss_anxiety
add                            intent.add
open_account                   intent.open_account
fee                            intent.fee
complaint                      one emotion.* tag (either)              both emotion tags
market, greeting, sensitive_id —
slot {stock}                   security.<code>, board.<its board>
slot {fund}                    fund.<code>
slot {index}                   index.<id> (上证50→sse50, 沪深300→csi300,  security.<the ETF> in
                               中证500→csi500, 创业板指→chinext,          "{index}ETF"
                               科创50→star50)
slot {sector}                  SECTOR_TAGS below
=============================  ======================================  ====================

Every other hit is a false positive. precision = TP / (TP + FP), recall = TP / expected.
Results: printed, and written to ``.bench/results/tagging-*.json``; summary in
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
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
from _measure import busy_cpu
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from caifu.data.demo import text as demo_text
from caifu.text import ChatTagger, TextHit, normalise, seed_rules
from caifu.text.normalise import normalise_many

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench"
GOAL = 50_000

LABEL_EXPECTED = {
    "open_chinext": {"board.chinext", "intent.open_permission"},
    "open_chinext_traditional": {"board.chinext", "intent.open_permission"},
    "level2": {"intent.level2"},
    "redeem": {"intent.redeem"},
    "add": {"intent.add"},
    "open_account": {"intent.open_account"},
    "fee": {"intent.fee"},
}
LABEL_ALSO = {
    "level2": {"intent.open_permission"},
    "redeem": {"emotion.loss_anxiety"},
    "complaint": {"emotion.complaint", "emotion.loss_anxiety"},
}
ANY_EMOTION = {"complaint"}  # one emotion.* tag expected, either one
INDEX_TAGS = {"上证50": "index.sse50", "沪深300": "index.csi300", "中证500": "index.csi500",
              "创业板指": "index.chinext", "科创50": "index.star50"}
SECTOR_TAGS = {"新能源": "theme.新能源", "半导体": "industry.半导体", "白酒": "industry.白酒",
               "医药": "theme.医药", "证券": "industry.证券", "光伏": "theme.光伏",
               "军工": "theme.军工", "人工智能": "theme.人工智能", "银行": "industry.银行",
               "红利": "theme.红利"}

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
    if (out / "_ground_truth" / "chat_labels.parquet").exists():
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


def template_parsers() -> dict[str, list[re.Pattern[str]]]:
    out: dict[str, list[re.Pattern[str]]] = {}
    for label, templates in demo_text.CUSTOMER_TEMPLATES.items():
        pats = []
        for tpl in templates:
            parts = re.split(r"\{(\w+)\}", tpl)
            rx = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)"
                         for i, p in enumerate(parts))
            pats.append(re.compile(rx + r"\Z"))
        out[label] = pats
    return out


def expectations(label: str, content: str, parsers: dict, securities: dict,
                 funds: dict, etfs: dict) -> tuple[set[str], set[str]] | None:
    """(expected, also accepted) tags of one customer message; None if no template fits."""
    for rx in parsers.get(label, []):
        m = rx.match(content)
        if m is None:
            continue
        expected, also = set(LABEL_EXPECTED.get(label, ())), set(LABEL_ALSO.get(label, ()))
        slots = m.groupdict()
        if "stock" in slots:
            for code, board in securities.get(slots["stock"], ()):
                expected.add(f"security.{code}")
                if board:
                    expected.add(f"board.{board}")
        if "fund" in slots:
            expected.update(f"fund.{c}" for c in funds.get(slots["fund"], ()))
        if "index" in slots:
            expected.add(INDEX_TAGS[slots["index"]])
            also.update(f"security.{c}" for c in etfs.get(slots["index"] + "ETF", ()))
        if "sector" in slots:
            expected.add(SECTOR_TAGS[slots["sector"]])
        return expected, also
    return None


def quality(chats: pa.Table, labels: pa.Table, hits: list[list[TextHit]],
            securities: pa.Table, funds: pa.Table) -> dict:
    label_of = dict(zip(labels["msg_id"].to_pylist(), labels["label"].to_pylist(), strict=True))
    sec: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    etfs: dict[str, list[str]] = defaultdict(list)
    for row in securities.select(["security_code", "short_name", "board"]).to_pylist():
        name = "".join(row["short_name"].split())
        sec[name].append((row["security_code"], row["board"]))
        etfs[name].append(row["security_code"])
    fund: dict[str, list[str]] = defaultdict(list)
    for row in funds.select(["fund_code", "name"]).to_pylist():
        fund[row["name"]].append(row["fund_code"])
    parsers = template_parsers()
    fam = defaultdict(Counter)  # family -> tp/fp/expected
    per_tag = defaultdict(Counter)
    per_label = defaultdict(Counter)
    unparsed, scored = 0, 0
    fp_examples: dict[str, list[str]] = defaultdict(list)
    rows = zip(chats["msg_id"].to_pylist(), chats["sender"].to_pylist(),
               chats["msg_type"].to_pylist(), chats["content"].to_pylist(), hits, strict=True)
    for msg_id, sender, mtype, content, found in rows:
        label = label_of[msg_id]
        if sender != "customer" or mtype != "text" or not content:
            continue
        exp = expectations(label, content, parsers, sec, fund, etfs)
        if exp is None:
            unparsed += 1
            continue
        scored += 1
        expected, also = exp
        tags = {h.tag for h in found}
        per_label[label]["messages"] += 1
        for tag in expected:
            fam[family(tag)]["expected"] += 1
            per_tag[tag]["expected"] += 1
            if tag in tags:
                fam[family(tag)]["tp"] += 1
                per_tag[tag]["tp"] += 1
            else:
                per_label[label]["missed"] += 1
        if label in ANY_EMOTION:
            emo = {t for t in tags if t.startswith("emotion.")}
            fam["emotion"]["expected"] += 1
            per_tag["emotion.(any)"]["expected"] += 1
            if emo:
                fam["emotion"]["tp"] += 1
                per_tag["emotion.(any)"]["tp"] += 1
            else:
                per_label[label]["missed"] += 1
        for tag in tags - expected - also:
            fam[family(tag)]["fp"] += 1
            per_tag[tag]["fp"] += 1
            per_label[label]["false_pos"] += 1
            if len(fp_examples[tag]) < 3:
                fp_examples[tag].append(content)
        if label == "reject_chinext" and "board.chinext" in tags:
            per_label[label]["chinext_tagged"] += 1
    return {"scored": scored, "unparsed": unparsed, "families": fam, "tags": per_tag,
            "labels": per_label, "fp_examples": fp_examples}


def pr(c: Counter) -> tuple[str, str]:
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else float("nan")
    r = c["tp"] / c["expected"] if c["expected"] else float("nan")
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
        q = quality(chats, labels, hits, securities, funds)
    ours, single, ref = (speed[name] for name in fns)

    table = Table(title="(a) throughput, one core, single thread")
    for col in ("", "msgs/s (CPU)", "msgs/s (wall)", "background cores"):
        table.add_column(col, justify="right")
    for name, r in speed.items():
        table.add_row(name, f"{r['msgs_per_cpu_s']:,.0f}", f"{r['msgs_per_wall_s']:,.0f}",
                      f"{r['background_cores']:.2f}")
    console.print(table)
    ratio = ours["msgs_per_cpu_s"] / ref["msgs_per_cpu_s"]
    verdict = "met" if ours["msgs_per_cpu_s"] >= GOAL else "NOT met"
    console.print(f"caifu / reference = {ratio:.2f}; goal ≥ {GOAL:,} msgs/s/core: {verdict}")

    table = Table(title=f"(b) quality per family, {q['scored']:,} customer text messages "
                        f"({q['unparsed']} not parsed back to a template)")
    for col in ("family", "expected", "TP", "FP", "precision", "recall"):
        table.add_column(col, justify="right")
    for name in sorted(q["families"]):
        c = q["families"][name]
        table.add_row(name, f"{c['expected']:,}", f"{c['tp']:,}", f"{c['fp']:,}", *pr(c))
    console.print(table)
    table = Table(title="per tag (seed tags; security.* and fund.* summed)")
    for col in ("tag", "expected", "TP", "FP", "precision", "recall"):
        table.add_column(col, justify="right")
    grouped: dict[str, Counter] = defaultdict(Counter)
    for tag, c in q["tags"].items():
        key = tag.split(".")[0] + ".*" if tag.startswith(("security.", "fund.")) else tag
        grouped[key].update(c)
    for tag in sorted(grouped):
        c = grouped[tag]
        if c["expected"] or c["fp"] >= 5:
            table.add_row(tag, f"{c['expected']:,}", f"{c['tp']:,}", f"{c['fp']:,}", *pr(c))
    console.print(table)
    table = Table(title="per label")
    for col in ("label", "messages", "missed", "false pos.", "reject → chinext tagged"):
        table.add_column(col, justify="right")
    for label in sorted(q["labels"]):
        c = q["labels"][label]
        table.add_row(label, f"{c['messages']:,}", f"{c['missed']:,}", f"{c['false_pos']:,}",
                      f"{c['chinext_tagged']:,}" if label == "reject_chinext" else "")
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
    worst = sorted(q["fp_examples"].items(), key=lambda kv: -q["tags"][kv[0]]["fp"])[:8]
    for tag, examples in worst:
        console.print(f"  FP {tag} ×{q['tags'][tag]['fp']}: {examples}")

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
        "quality": {k: q[k] for k in ("scored", "unparsed")}
        | {k: {kk: dict(vv) for kk, vv in q[k].items()} for k in ("families", "tags", "labels")},
    }
    out = CACHE / "results" / f"tagging-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1))
    console.print(f"results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
