"""Transitional: the serving tables' queries moved to ``repos.profiles``. Kept only for
``services/ingest/realtime.py``, which another change owns at the moment; delete this module
once it imports ``repos.profiles``."""

from caifu.adapters.sor.repos.profiles import serving_as_of

__all__ = ["serving_as_of"]
