"""The process's counters and their Prometheus text (``services/platform/telemetry``)."""

from __future__ import annotations

import threading

import pytest

from caifu.services.platform.telemetry import Counters

NAME = "caifu_recommend_recheck_refused_total"


def test_counters_render_as_prometheus_text_per_tenant() -> None:
    c = Counters()
    c.inc(NAME, 2, tenant="acme", surface="sidebar", rule="LEVEL_MISMATCH")
    c.inc(NAME, tenant="acme", surface="sidebar", rule="LEVEL_MISMATCH")
    c.inc(NAME, 0.5, tenant='b"e\\ta', surface="api", rule="NOT_VALID")
    head = ["# HELP caifu_recommend_recheck_refused_total Published recommendations refused "
            "by the read-time suitability re-check",
            "# TYPE caifu_recommend_recheck_refused_total counter"]
    acme = f'{NAME}{{rule="LEVEL_MISMATCH",surface="sidebar",tenant="acme"}} 3'
    other = f'{NAME}{{rule="NOT_VALID",surface="api",tenant="b\\"e\\\\ta"}} 0.5'
    assert c.render().splitlines() == head + [acme, other]
    assert c.render("acme").splitlines() == head + [acme]
    assert c.render("nobody").splitlines() == head
    assert c.value(NAME, tenant="acme") == 3 and c.value(NAME) == 3.5
    assert c.value(NAME, rule="NO_CONSENT") == 0


def test_counters_refuse_undeclared_names_and_going_down() -> None:
    c = Counters()
    with pytest.raises(ValueError, match="undeclared counter"):
        c.inc("caifu_something_else_total")
    with pytest.raises(ValueError, match="only goes up"):
        c.inc(NAME, -1, tenant="acme")


def test_counters_count_every_increment_across_threads() -> None:
    c = Counters()

    def work() -> None:
        for _ in range(2000):
            c.inc(NAME, tenant="acme", surface="api", rule="NOT_VALID")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.value(NAME) == 16_000
