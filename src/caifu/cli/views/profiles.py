"""Terminal views for profiles: build progress, tag and segment counts, one customer
with the evidence for each tag."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from caifu.cli.views import cited, count
from caifu.services.container import Container

if TYPE_CHECKING:
    from caifu.core.identity import Principal
    from caifu.services.profiles.build import BuildResult


EXAMPLE_FEATURES = ("aum", "aum_trend_30d", "unrealised_pnl", "worst_security_code",
                    "days_since_last_trade", "trades_365d", "fund_value", "c_level",
                    "chinext_opened")


def build_with_progress(c: Container, tenant: str, engine: str, as_of: date | None,
                        console: Console) -> BuildResult:
    from caifu.services.profiles.build import Build

    with console.status("build", spinner="dots") as status:
        def step(message: str) -> None:
            status.update(f"build {tenant} on {engine}: {message}")

        return Build(c, step).build(tenant, engine=engine, as_of=as_of)


def print_build(r: BuildResult, console: Console, names: dict[str, str],
                counts: bool = True) -> None:
    """What the build did: per tag the customers it assigned, gained and lost, and each
    segment's size (``counts=False``: only its notes and timings — the demo shows the
    counts from the metric layer, ``print_held``)."""
    if counts:
        t = Table("tag", "name", "customers", "gained", "lost",
                  title=f"tags — {r.tenant} as of {r.as_of} ({r.customers:,} customers, "
                        f"{r.engine})")
        for tag_id in sorted(set(r.tags) | set(r.lost), key=lambda k: (-r.tags.get(k, 0), k)):
            t.add_row(tag_id, names.get(tag_id, ""), f"{r.tags.get(tag_id, 0):,}",
                      f"{r.gained.get(tag_id, 0):,}", f"{r.lost.get(tag_id, 0):,}")
        console.print(t)
    if r.segments and counts:
        s = Table("segment", "members", title="segments")
        for seg, n in sorted(r.segments.items()):
            s.add_row(seg, f"{n:,}")
        console.print(s)
    for note in r.notes:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in r.timings.items())
    console.print(f"profile snapshot v{r.feature_version} in the lake; "
                  f"{'serving rows updated' if r.served else 'serving rows unchanged'}; {phases}")


def print_held(c: Container, p: Principal, console: Console, names: dict[str, str]) -> None:
    """Customers holding each tag now and each segment's size on the newest build date, in
    ``p``'s scope: the metric layer's tag_holders and segment_size."""
    from caifu.services.profiles.figures import segment_sizes, tag_holders

    held = tag_holders(c, p)
    t = Table("tag", "name", "customers", title=f"tags held — {p.tenant_id}",
              caption=f"customers: {cited(held.metrics)}", caption_justify="left")
    for tag_id, n in sorted(held.values.items(), key=lambda kv: (-(kv[1] or 0), kv[0])):
        t.add_row(tag_id, names.get(tag_id, ""), count(n))
    console.print(t)
    day, sizes, sized = segment_sizes(c, p)
    if day is not None and sized:
        s = Table("segment", "members", title=f"segments on {day}",
                  caption=f"members: {cited(sizes.metrics)}", caption_justify="left")
        for seg in sorted(sized):
            s.add_row(seg, count(sizes.get(seg)))
        console.print(s)


def print_customer(view: dict[str, Any], console: Console, names: dict[str, str],
                   features: tuple[str, ...] = ()) -> None:
    cust = view["customer"]
    console.print(f"[bold]{cust['customer_id']}[/] {cust['name']} · {cust['mobile']} · "
                  f"{cust['id_number']} · {cust['branch_id']} · 渠道 {cust['channel']} · "
                  f"profile as of {view['as_of']}", soft_wrap=True)
    shown = features or tuple(view["features"])
    if view["features"] and shown:
        values = {k: view["features"].get(k) for k in shown}
        line = ", ".join(f"{k}={round(v, 4) if isinstance(v, float) else v}"
                         for k, v in values.items())
        console.print(f"  {line}", soft_wrap=True, highlight=False)
    for tag in view["tags"]:
        ev = tag["evidence"]
        if tag["kind"] == "text":
            quote = ev.get("matched") or "」「".join(
                str(g.get("matched")) for g in ev.get("ngrams") or [])
            score = f", model {ev['score']}" if ev.get("score") is not None else ""
            label = f"{ev['label']}: " if ev.get("label") else ""
            why = (f"{label}「{quote}」{score} in message {ev.get('message_id')} "
                   f"({ev.get('mentions')}×)")
        elif tag["kind"] == "rule":
            why = f"{ev.get('when')}  ← " + ", ".join(
                f"{k}={v}" for k, v in ev.get("features", {}).items())
        else:
            why = f"{ev.get('score')} = {ev.get('value')} ≥ {ev.get('min_score')}"
            if ev.get("reasons"):
                why += "  ← " + ", ".join(f"{r['feature']}={r['value']} (+{r['contribution']})"
                                          for r in ev["reasons"])
        console.print(f"  [cyan]{names.get(tag['tag_id'], tag['tag_id'])}[/] "
                      f"({tag['tag_id']} v{tag['tag_version']}): {why}",
                      soft_wrap=True, highlight=False)


def print_examples(c: Container, tenant: str, console: Console,
                   names: dict[str, str]) -> None:
    """A few customers with their tags and evidence: one per kind of story."""
    from caifu.services.profiles.customers import customer_view, examples

    console.rule("[bold]example customers (personal data masked)")
    shown: set[str] = set()
    for group in (["interest_chinext", "chinext_trader_without_permission"],
                  ["intent_redeem", "fund_heavy", "loss_anxiety"],
                  ["dormant", "high_net_worth"], ["churn_risk", "chinext_lead"]):
        for cid in examples(c, tenant, group, n=3):
            if cid not in shown:
                shown.add(cid)
                print_customer(customer_view(c, tenant, cid), console, names, EXAMPLE_FEATURES)
                break
