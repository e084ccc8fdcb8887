"""``caifu wecom …``: a tenant's WeCom app, its callbacks and the state they keep.

    caifu wecom configure -t demo --corp-id ww… --agent-id 1000002 --token T --aes-key K --secret S
    caifu wecom status -t demo        callbacks by status, rejections by reason, groups to resync
    caifu wecom apply -t demo         apply pending callbacks now (the service does it by itself)
    caifu wecom resync -t demo        groups with a version gap, and the corp tags, from WeCom
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table as RichTable

from caifu.cli.common import TenantOpt, WorkspaceOpt, _container, app, console
from caifu.core.errors import UnreadableSourceError

wecom_cmd = typer.Typer(no_args_is_help=True, help="WeCom (企业微信): app, callbacks, contacts.")
app.add_typer(wecom_cmd, name="wecom")


@wecom_cmd.command()
def configure(tenant: TenantOpt,
              corp_id: Annotated[str, typer.Option(help="CorpID (the callbacks' receiveid)")],
              agent_id: Annotated[str, typer.Option(help="the self-built app's AgentId")],
              token: Annotated[str, typer.Option(help="callback Token")],
              aes_key: Annotated[str, typer.Option(help="callback EncodingAESKey (43 chars)")],
              secret: Annotated[str, typer.Option(help="the app's Secret")],
              api_base_url: Annotated[str | None, typer.Option(
                  help="a gateway or the fake WeCom instead of qyapi.weixin.qq.com")] = None,
              workspace: WorkspaceOpt = None) -> None:
    """Store the tenant's WeCom app; its callback URL is then /wecom/<tenant>/callback."""
    from caifu.services.scrm import wecom_app

    wecom_app.configure(_container(workspace), tenant, corp_id=corp_id, agent_id=agent_id,
                    token=token, encoding_aes_key=aes_key, secret=secret,
                    api_base_url=api_base_url)
    console.print(f"[bold]{tenant}[/] WeCom app saved; callback URL: /wecom/{tenant}/callback")


@wecom_cmd.command()
def status(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """Callbacks by status, rejections of the last 7 days by reason, groups to resync."""
    from caifu.services.scrm.callback_apply import WeComEvents
    from caifu.services.scrm.callback_intake import Callbacks

    c = _container(workspace)
    st = WeComEvents(c).status(tenant)
    by_status, failed, resync = st["by_status"], st["failed"], st["groups_to_resync"]
    t = RichTable("status", "callbacks", title=f"{tenant}: WeCom callbacks", title_justify="left")
    for s, n in by_status:
        t.add_row(s, f"{n:,}")
    console.print(t)
    for error, n in failed:
        console.print(f"  failed ×{n:,}: {error}", highlight=False)
    r = RichTable("day", "reason", "rejected", title="rejected callbacks (7 days)",
                  title_justify="left")
    for row in Callbacks(c).rejections(tenant):
        r.add_row(str(row["day"]), str(row["reason"]), f"{row['count']:,}")
    console.print(r)
    console.print(f"groups waiting for a resync: {resync:,}")


@wecom_cmd.command()
def apply(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """Apply the pending callbacks now (the service's worker does this by itself)."""
    from caifu.services.scrm.callback_apply import WeComEvents

    events = WeComEvents(_container(workspace))
    total = applied = failed = 0
    while True:
        done = events.apply_pending(tenant)
        applied, failed = applied + done.applied, failed + done.failed
        total += done.applied + done.failed
        if done.applied + done.failed == 0:
            break
    console.print(f"[bold]{tenant}[/] {applied:,} callbacks applied, {failed:,} failed "
                  "(caifu wecom status says why)")


@wecom_cmd.command()
def resync(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """Reload from WeCom the groups that missed events, and the corp tags."""
    from caifu.services.scrm.callback_apply import WeComEvents
    from caifu.services.scrm.wecom_app import client_for

    c = _container(workspace)
    with client_for(c, tenant) as client:
        chats, tags = WeComEvents(c).resync_pending(tenant, client)
    console.print(f"[bold]{tenant}[/] {chats:,} groups resynced, {tags:,} corp tags loaded")


@wecom_cmd.command()
def chats(tenant: TenantOpt,
          files: Annotated[list[Path], typer.Argument(help="decrypted archive, JSON Lines")],
          workspace: WorkspaceOpt = None) -> None:
    """Take in decrypted chat-archive messages: real-time tags and the compliance check."""
    from caifu.services.compliance.chat_review import intake_archive

    c = _container(workspace)
    for path in files:
        try:
            with path.open("rb") as f:
                r = intake_archive(c, tenant, f)
        except OSError as exc:
            raise UnreadableSourceError(str(exc.strerror or exc), path=str(path)) from None
        console.print(f"[bold]{path.name}[/] {r.lines:,} lines: {r.messages:,} messages, "
                      f"{len(r.rejected):,} rejected, {sum(r.skipped.values()):,} skipped; "
                      f"flags: {r.flags.get('review', 0):,} for review, "
                      f"{r.flags.get('alert', 0):,} alerts (lexicon {r.lexicon_version}, "
                      f"model {r.model_version})")
        for rej in r.rejected[:20]:
            console.print(f"  line {rej['line']}: {rej['reason']}", highlight=False)
        if len(r.rejected) > 20:
            console.print(f"  … and {len(r.rejected) - 20:,} more rejections")


@wecom_cmd.command()
def flags(tenant: TenantOpt, status: Annotated[str, typer.Option()] = "open",
          limit: Annotated[int, typer.Option()] = 20, scan: Annotated[bool, typer.Option(
              help="first run the review (lexicon + model) over the chat history in the lake")] = False,
          workspace: WorkspaceOpt = None) -> None:
    """The chat-compliance review queue: category, source (lexicon | model), evidence (the
    phrase, or the model's score and top n-grams), masked excerpt, and the versions."""
    from caifu.services.compliance.chat_review import review_queue, scan_lake

    c = _container(workspace)
    if scan:
        with console.status("checking the chat history (lexicon + model)"):
            found = scan_lake(c, tenant)
        console.print(f"chat history: {found.get('review', 0):,} phrases for review, "
                      f"{found.get('alert', 0):,} customer alerts")
    t = RichTable("time", "advisor", "who", "category", "source", "evidence", "excerpt",
                  title=f"{tenant}: chat flags ({status})", title_justify="left")
    versions: set[tuple[str, str]] = set()
    for f in review_queue(c, tenant, status, limit):
        t.add_row(str(f["msg_time"])[:16], f["advisor_id"], f["sender"], f["category"],
                  f["source"], _evidence(f), f["excerpt"])
        versions.add((f["lexicon_version"], f["model_version"] or "—"))
    console.print(t)
    for lexicon, model in sorted(versions):
        console.print(f"lexicon {lexicon}, model {model}", highlight=False)


def _evidence(flag: dict[str, Any]) -> str:
    """「phrase」 for a lexicon hit, the model's score and top n-grams for the model."""
    parts = []
    for e in flag["evidence"]:
        if e.get("source") == "lexicon":
            parts.append(f"「{e.get('matched') or flag['phrase']}」")
        elif e.get("source") == "model":
            grams = "/".join(g["ngram"] for g in e.get("ngrams", []))
            parts.append(f"model {e.get('score', 0):.2f} {grams}".rstrip())
    return " + ".join(parts) or flag["phrase"]


@wecom_cmd.command("mirror-tags")
def mirror_tags(tenant: TenantOpt, tag: Annotated[list[str] | None, typer.Option(
                    help="caifu tag id to mirror (repeat); default: every defined tag")] = None,
                workspace: WorkspaceOpt = None) -> None:
    """Mirror caifu's tags into WeCom (corp tags in 「财富标签」, set with mark_tag)."""
    from caifu.services.scrm.tag_mirror import mirror

    with console.status("mirroring tags into WeCom"):
        r = mirror(_container(workspace), tenant, tag or None)
    console.print(f"[bold]{tenant}[/] {r.tags} tags ({r.created} created in WeCom); "
                  f"{r.marked:,} of {r.contacts:,} linked contacts updated "
                  f"(+{r.added:,} / -{r.removed:,} tags); {len(r.errors)} refused")
    for e in r.errors[:10]:
        console.print(f"  {e}", highlight=False)


# identity links: caifu wecom links | link-all | decide | unlink (cli/scrm)
from caifu.cli.scrm.groups import add_link_commands  # noqa: E402

add_link_commands(wecom_cmd)
