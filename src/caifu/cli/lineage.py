"""Column lineage: ``caifu lineage export`` writes OpenLineage run events (docs/lineage.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from caifu.cli.common import WorkspaceOpt, _container, app, console

lineage_app = typer.Typer(no_args_is_help=True,
                          help="Column lineage of metrics, profile features and rule tags.")
app.add_typer(lineage_app, name="lineage")


@lineage_app.command("export")
def export(out: Annotated[Path, typer.Option(help="JSON Lines file to write")],
           tenant: Annotated[str | None, typer.Option(
               "--tenant", "-t", help="Tenant id (its own metrics and tags) [shipped ones]")]
           = None,
           workspace: WorkspaceOpt = None) -> None:
    """Write OpenLineage run events (spec 2-0-2): one job per metric, the profile and the
    rule tags, with schema and column-lineage facets. Nothing is sent anywhere."""
    from caifu.services.metrics import lineage

    c = _container(workspace) if tenant is not None else None
    counts = lineage.export(c, tenant, out)
    console.print(f"wrote {counts['events']} events for {counts['jobs']} jobs "
                  f"({counts['metrics']} metrics, {counts['features']} profile features, "
                  f"{counts['tags']} rule tags) to {out}", highlight=False)
