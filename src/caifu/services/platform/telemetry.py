"""Operational counters of one process, exported at ``GET /metrics`` in Prometheus' text
format (version 0.0.4), so a monitoring system can alert on what must stay at zero.

    caifu_recommend_recheck_refused_total{tenant, surface, rule}
        items of a published recommendation list that the read-time re-check refused
        (``services/recommend/serving``): a new assessment, a withdrawn consent, an item past
        its validity. Above zero means lists are older than the facts they were made from;
        publish again.

Counters live in the container (one per process, as the API serves it); they start at zero
when the process starts, as Prometheus counters do, and are never persisted. A tenant's
caller sees only his tenant's series; a platform_admin sees all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

HELP = {
    "caifu_recommend_recheck_refused_total":
        "Published recommendations refused by the read-time suitability re-check",
}
LabelSet = tuple[tuple[str, str], ...]


class Counters:
    """Monotonic counters keyed by name and labels; safe across the API's worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, LabelSet], float] = {}

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        if name not in HELP:
            raise ValueError(f"undeclared counter {name!r}: add it to telemetry.HELP")
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, name: str, **labels: str) -> float:
        """The sum over every series of ``name`` whose labels include ``labels``."""
        with self._lock:
            items = list(self._values.items())
        want = set(labels.items())
        return sum(v for (n, ls), v in items if n == name and want <= set(ls))

    def render(self, tenant: str | None = None) -> str:
        """The exposition text; with ``tenant``, only series labelled with that tenant."""
        with self._lock:
            items = sorted(self._values.items())
        lines: list[str] = []
        for name, text in HELP.items():
            lines += [f"# HELP {name} {text}", f"# TYPE {name} counter"]
            lines += [f"{name}{_labels(ls)} {_number(v)}" for (n, ls), v in items
                      if n == name and (tenant is None or ("tenant", tenant) in ls)]
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}" if inner else ""


def _number(v: float) -> str:
    return str(int(v)) if v.is_integer() else repr(v)
