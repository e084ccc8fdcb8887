"""What the benchmarks measure the same way: the machine's busy CPU and a process tree's RSS.

Imported by the bench scripts as ``_measure`` (each runs as ``python bench/<name>.py``, which
puts this folder on the import path).
"""

from __future__ import annotations

from typing import Any

import psutil


def busy_cpu() -> float:
    """CPU-seconds the whole machine has been busy (all processes, all cores)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def tree_rss(root: psutil.Process) -> int:
    """Resident bytes of ``root`` and all its descendants now (a JVM child included);
    processes that end while being read count as 0."""
    rss = 0
    try:
        for p in [root, *root.children(recursive=True)]:
            try:
                rss += p.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return rss


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``."""
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def speed_table(title: str, speed: dict[str, dict[str, Any]]) -> Any:
    """A Rich table of ``timed`` results: messages/s of CPU and of wall time, background."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("", "msgs/s (CPU)", "msgs/s (wall)", "background cores"):
        table.add_column(col, justify="right")
    for name, r in speed.items():
        table.add_row(name, f"{r['msgs_per_cpu_s']:,.0f}", f"{r['msgs_per_wall_s']:,.0f}",
                      f"{r['background_cores']:.2f}")
    return table
