"""Chat understanding: ``caifu text train | tag | evaluate`` (the hybrid tagger, issue 14)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from caifu.cli.common import WorkspaceOpt, _container, app, console, err
from caifu.core.errors import ConfigError

text_app = typer.Typer(no_args_is_help=True,
                       help="Chat tagging: train the classifiers, tag JSON Lines, evaluate.")
app.add_typer(text_app, name="text")

TenantOpt = Annotated[str | None, typer.Option(
    "--tenant", "-t", help="Tenant id (its securities, funds, taxonomy and examples)")]
CorpusOpt = Annotated[Path | None, typer.Option(
    help="Corpus folder of *.jsonl [the package's caifu/data/text/corpus]")]
ModelOpt = Annotated[Path | None, typer.Option(
    "--model", help="Model folder [the tenant's, else the package's]")]
BATCH = 2000
# what the issue asks of the test split (DESIGN.md, "Text understanding")
GOALS = {"interests": 0.85, "intents": 0.85, "emotions": 0.80}


def _tenant(tenant: str | None, workspace: Path | None):  # type: ignore[no-untyped-def]
    if tenant is None:
        if workspace is not None:
            raise ConfigError("--workspace needs --tenant (whose securities, funds and model)")
        return None
    return _container(workspace)


def _spinner(what: str) -> Progress:
    p = Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err,
                 transient=True)
    p.add_task(what, total=None)
    return p


@text_app.command("train")
def train(corpus: CorpusOpt = None,
          out: Annotated[Path | None, typer.Option(
              help="Folder to write model.npz and manifest.json [the package's model folder]")]
          = None,
          tenant: TenantOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Train the per-family classifiers on the corpus's train split (thresholds on dev).
    With -t/-w: the tenant's model, with its taxonomy and examples, in the workspace."""
    from caifu.text.classifier import packaged_model_dir
    from caifu.text.corpus import load_corpus
    from caifu.text.hybrid import fit
    from caifu.text.taxonomy import default_taxonomy

    c = _tenant(tenant, workspace)
    with _spinner("training"):
        if c is not None:
            from caifu.services.text import models

            if out is not None:
                raise ConfigError("--out is for the shipped model; a tenant's model goes to "
                                  "its workspace")
            model, folder = models.train(c, tenant, corpus)  # type: ignore[arg-type]
        else:
            tax = default_taxonomy()
            model = fit(load_corpus(corpus, tax), tax)
            folder = out if out is not None else Path(str(packaged_model_dir()))
            model.save(folder)
    table = Table(title=f"model {model.version} (taxonomy {model.manifest['taxonomy_version']})")
    for col in ("side", "train", "dev", "n-grams", "C per family", "untrained (no example)"):
        table.add_column(col)
    for side, meta in model.manifest["sides"].items():
        table.add_row(side, str(meta["train_items"]), str(meta["dev_items"]),
                      f"{meta['vocab']:,}", ", ".join(f"{f} {v:g}" for f, v in meta["c"].items()),
                      ", ".join(meta["untrained"]) or "—")
    console.print(table)
    slack = model.manifest.get("hybrid", {}).get("slack", {})
    console.print("lexicon gate (slack below the threshold): "
                  + ", ".join(f"{f} {v}" for f, v in slack.items()), highlight=False)
    size = sum(p.stat().st_size for p in (folder / "model.npz", folder / "manifest.json"))
    console.print(f"written to {folder} ({size / 1e6:.2f} MB)", highlight=False)


def _lines(file: Path | None) -> Iterator[tuple[int, str]]:
    if file is None:
        yield from enumerate(sys.stdin, 1)
        return
    if not file.is_file():
        raise ConfigError(f"{file}: no such file")
    with file.open(encoding="utf-8", errors="replace") as fh:
        yield from enumerate(fh, 1)


def _parse(n: int, line: str) -> tuple[Any, str] | str:
    """``(id, text)``, or the problem with line ``n``."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"line {n}: not JSON ({exc.msg}, column {exc.colno})"
    if not isinstance(row, dict):
        return f"line {n}: expected a JSON object with id and text"
    if "id" not in row or "text" not in row:
        missing = [k for k in ("id", "text") if k not in row]
        return f"line {n}: missing {' and '.join(missing)}"
    if not isinstance(row["id"], str | int) or isinstance(row["id"], bool):
        return f"line {n}: id must be a string or an integer"
    if not isinstance(row["text"], str):
        return f"line {n}: text must be a string, got {type(row['text']).__name__}"
    return row["id"], row["text"]


def _flush(tagger: Any, side: str, batch: list[tuple[Any, str]], out: TextIO) -> None:
    if not batch:
        return
    for (mid, _), tags in zip(batch, tagger.tag_batch([t for _, t in batch], side), strict=True):
        out.write(json.dumps({"id": mid, **tags.to_json()}, ensure_ascii=False) + "\n")
    batch.clear()


@text_app.command("tag")
def tag(side: Annotated[str, typer.Option(help="Who speaks: customer or advisor")],
        file: Annotated[Path | None, typer.Argument(
            help='JSON Lines {"id", "text"} [stdin]')] = None,
        model: ModelOpt = None, tenant: TenantOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Tag JSON Lines messages; write {"id", "interests", "intents", "emotions", "violations",
    "evidence"} per line. Bad lines are reported on stderr and the exit code is 1."""
    from caifu.text.hybrid import HybridTagger

    if side not in ("customer", "advisor"):
        raise ConfigError(f"--side: expected customer or advisor, got {side!r}")
    c = _tenant(tenant, workspace)
    if c is not None:
        from caifu.services.text import models

        tagger = models.tagger(c, tenant)  # type: ignore[arg-type]
    else:
        tagger = HybridTagger.load(model)
    run_batches(file, lambda batch: _flush(tagger, side, batch, sys.stdout),
                "message(s) tagged", f"model {tagger.versions['model']}")


def run_batches(file: Path | None, flush: Any, done: str, model: str, size: int = BATCH
                ) -> None:
    """JSON Lines ``{"id", "text"}`` from ``file`` (stdin if None) to ``flush`` in batches of
    ``size``; a bad line is reported on stderr with its number and skipped, and the command
    then exits 1 (after every good line was written)."""
    batch: list[tuple[Any, str]] = []
    good = bad = 0
    for n, line in _lines(file):
        if not line.strip():
            continue
        parsed = _parse(n, line)
        if isinstance(parsed, str):
            bad += 1
            err.print(f"[yellow]skipped[/] {escape(parsed)}", highlight=False, soft_wrap=True)
            continue
        good += 1
        batch.append(parsed)
        if len(batch) >= size:
            flush(batch)
    if batch:
        flush(batch)
    sys.stdout.flush()
    err.print(f"{good:,} {done}, {bad:,} bad line(s) skipped ({model})", highlight=False)
    if bad:
        raise typer.Exit(1)


@text_app.command("evaluate")
def evaluate(split: Annotated[str, typer.Option(help="train, dev or test")] = "test",
             corpus: CorpusOpt = None, model: ModelOpt = None,
             as_json: Annotated[bool, typer.Option("--json", help="The report as JSON")] = False,
             check: Annotated[Path | None, typer.Option(
                 help="Recorded figures (docs/text-quality.json): exit 1 if any family's "
                      "micro-F1 is more than --tolerance below")] = None,
             tolerance: Annotated[float, typer.Option(help="Allowed drop for --check")] = 0.03,
             record: Annotated[Path | None, typer.Option(
                 help="Write the family figures to this file (for --check)")] = None) -> None:
    """Per-label precision/recall/F1 of the hybrid tagger on a corpus split."""
    from caifu.text import evaluation
    from caifu.text.corpus import load_corpus
    from caifu.text.hybrid import HybridTagger

    if split not in ("train", "dev", "test"):
        raise ConfigError(f"--split: expected train, dev or test, got {split!r}")
    with _spinner(f"tagging the {split} split"):
        tagger = HybridTagger.load(model)
        loaded = load_corpus(corpus, tagger.taxonomy)
        report = evaluation.evaluate(tagger, loaded.split(split), split)
    show_and_gate(report, _print_report, as_json, record, check, tolerance,
                  evaluation.recorded_summary, evaluation.check,
                  stale=loaded.digest != tagger.model.manifest.get("corpus_sha256"),
                  retrain="caifu text train", what="no family")


def show_and_gate(report: dict[str, Any], show: Any, as_json: bool, record: Path | None,
                  check: Path | None, tolerance: float, summary: Any, compare: Any,
                  stale: bool, retrain: str, what: str) -> None:
    """What ``caifu text evaluate`` and ``caifu risk evaluate`` do with a report: warn when the
    model was trained on another corpus, print it (or JSON), write the summary (``--record``)
    and fail when a figure fell more than ``tolerance`` below the recorded one (``--check``)."""
    if stale:
        err.print("[yellow]warning:[/] the model was trained on another corpus than this one "
                  f"(retrain with `{retrain}`): its dev/test figures may be on seen text",
                  highlight=False, soft_wrap=True)
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    else:
        show(report)
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(summary(report), ensure_ascii=False, indent=1,
                                     sort_keys=True) + "\n", encoding="utf-8")
        err.print(f"recorded to {record}", highlight=False)
    if check is not None:
        if not check.is_file():
            raise ConfigError(f"--check {check}: no such file (write it with --record)")
        failures = compare(report, json.loads(check.read_text(encoding="utf-8")), tolerance)
        for failure in failures:
            err.print(f"[bold red]dropped:[/] {escape(failure)}", highlight=False)
        if failures:
            raise typer.Exit(1)
        err.print(f"quality gate: {what} dropped more than {tolerance:.2f} from {check}",
                  highlight=False)


def _print_report(r: dict[str, Any]) -> None:
    v = r["versions"]
    console.print(f"{r['split']} split: {r['items']} item(s); model {v['model']}, taxonomy "
                  f"{v['taxonomy']}, dictionaries {v['dictionaries']}, lexicon {v['lexicon']}",
                  highlight=False)
    fam = Table(title="families (micro)")
    for col in ("family", "precision", "recall", "F1", "goal", "items"):
        fam.add_column(col, justify="right" if col != "family" else "left")
    for name, f in r["families"].items():
        goal = GOALS.get(name)
        fam.add_row(name, f"{f['precision']:.3f}", f"{f['recall']:.3f}", f"{f['f1']:.3f}",
                    f"≥ {goal:.2f}" if goal else "", str(f["items"]))
    vn = r["violation_vs_none"]
    fam.add_row("violation vs none", f"{vn['precision']:.3f}", f"{vn['recall']:.3f}",
                f"{vn['f1']:.3f}", "R ≥ 0.90 at P ≥ 0.85", str(vn["items"]))
    for script, s in r["scripts"].items():
        fam.add_row(f"all families, {script}", f"{s['precision']:.3f}", f"{s['recall']:.3f}",
                    f"{s['f1']:.3f}", "within 0.03" if script == "traditional" else "", "")
    console.print(fam)
    labels = Table(title="labels")
    for col in ("family", "label", "support", "tp", "fp", "fn", "precision", "recall", "F1"):
        labels.add_column(col, justify="left" if col in ("family", "label") else "right")
    for name, rows in r["labels"].items():
        for label, c in rows.items():
            labels.add_row(name, label, str(c["support"]), str(c["tp"]), str(c["fp"]),
                           str(c["fn"]), f"{c['precision']:.2f}", f"{c['recall']:.2f}",
                           f"{c['f1']:.2f}")
    console.print(labels)
    conf = Table(title="confusion: errors, most frequent first (true → predicted)")
    for col in ("family", "true", "predicted", "n"):
        conf.add_column(col, justify="right" if col == "n" else "left")
    pairs = [(n, f, t, p) for f, rows in r["confusion"].items() for t, row in rows.items()
             for p, n in row.items() if t != p]
    for n, f, t, p in sorted(pairs, key=lambda x: (-x[0], x[1], x[2], x[3]))[:20]:
        conf.add_row(f, t, p, str(n))
    console.print(conf)
    worst = Table(title="worst misses")
    for col in ("id", "text", "expected", "predicted"):
        worst.add_column(col, overflow="fold")
    for w in r["worst"]:
        exp = "; ".join(f"{k}: {','.join(v)}" for k, v in w["expected"].items() if v)
        got = "; ".join(f"{k}: {','.join(v)}" for k, v in w["predicted"].items() if v)
        worst.add_row(w["id"], escape(w["text"]), exp or "none", got or "none")
    console.print(worst)
