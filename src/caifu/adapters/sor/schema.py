"""The whole system of record: every table module imported, so ``metadata`` knows them all.

Import this where every table must be known — Alembic's ``env.py``, the data-subject requests
that discover where a customer's data lives — and a single table module elsewhere.
"""

from __future__ import annotations

from caifu.adapters.sor import models as models
from caifu.adapters.sor import quality_models as quality_models
from caifu.adapters.sor import recommend_models as recommend_models
from caifu.adapters.sor import risk_models as risk_models
from caifu.adapters.sor import scrm_models as scrm_models
from caifu.adapters.sor.metadata import metadata as metadata

__all__ = ["metadata", "models", "quality_models", "recommend_models", "risk_models", "scrm_models"]
