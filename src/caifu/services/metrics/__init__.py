"""Governed metrics: one definition per KPI (``src/caifu/data/metrics``), answered for a caller
in his scope by the CLI, the API and the reports (``docs/metrics.md``)."""
