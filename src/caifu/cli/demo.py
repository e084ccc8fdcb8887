"""``caifu demo`` (the main job) and ``caifu demo-data`` (the demo broker's exports)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from caifu.cli.common import (
    app,
    console,
)
from caifu.settings import Settings


@app.command("demo-data")
def demo_data(out: Annotated[Path, typer.Option(help="Output folder")] = Path("demo-data"),
              customers: int = 100_000, seed: int = 7) -> None:
    """Write a realistic, deterministic demo broker's exports (with some bad rows)."""
    from caifu.cli.views.demo import generate_with_progress

    summary = generate_with_progress(out, customers, seed, console)
    console.print(f"wrote {sum(summary.rows_per_file.values()):,} rows in "
                  f"{len(summary.rows_per_file)} files to {out} in {summary.elapsed_seconds:.1f} s")


@app.command()
def demo(customers: int = 100_000, seed: int = 7,
         workspace: Annotated[Path, typer.Option(
             "--workspace", "-w", help="Demo workspace; replaced on every run")] = Path("caifu-demo"),
         serve: Annotated[bool, typer.Option(
             help="Then start the API with one demo user per role")] = False,
         port: Annotated[int, typer.Option(help="Port for --serve")] = 8000,
         ) -> None:
    """The main job: a demo workspace, the demo broker's exports, their ingest, a summary."""
    from caifu.cli.views.demo import run_demo, serve_demo

    run_demo(workspace, Settings(), customers, seed, console, port)
    if serve:
        serve_demo(workspace, Settings(), port, console)
