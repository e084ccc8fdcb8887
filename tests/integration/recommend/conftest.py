"""The small demo broker with its recommendation policy fitted and its lists published, once
per session (per xdist worker): fitting takes ~20 s, publishing 600 customers ~2 s."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from caifu.services.recommend import serving
from caifu.services.recommend.policy import Fitted
from tests.conftest import Broker

K, SPARES = 10, 10


@dataclass(frozen=True)
class Published:
    """``broker.root``: a closed workspace whose lists ``fitted`` published (k=K, spares)."""

    broker: Broker
    fitted: Fitted


@pytest.fixture(scope="session")
def published(small_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Published:
    base = tmp_path_factory.mktemp("rec-published")
    c = small_broker.copy(base / "ws")
    fitted = serving.fit_newest(c, "acme")
    serving.publish(c, fitted, K, SPARES)
    with c.engine.connect() as conn:  # everything in the .db file, nothing left in the WAL
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    return Published(Broker(base / "ws", small_broker.exports, small_broker.customers,
                            small_broker.seed), fitted)
