"""Terminal views (Rich) per context: progress bars and summaries around the services."""

from __future__ import annotations

from typing import Any


def count(n: int | None) -> str:
    """A count as the views print it; ``–`` where the metric layer withheld it."""
    return "–" if n is None else f"{n:,}"


def cited(metrics: list[dict[str, Any]]) -> str:
    """``metric vN #hash`` of each metric a view's figures come from, for its caption."""
    return ", ".join(f"{m['metric']} v{m['version']} #{m['definition_hash']}" for m in metrics)


def metrics_line(metrics: list[dict[str, Any]]) -> str:
    """``metrics: metric vN hash, …``: the line under a command's figures that names them."""
    return "metrics: " + ", ".join(f"{m['metric']} v{m['version']} {m['definition_hash']}"
                                   for m in metrics)
