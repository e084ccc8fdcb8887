"""A deterministic demo broker: realistic exports of a securities broker's wealth business.

``generate(out_dir, customers=100_000, seed=7)`` writes branches, advisors, customers,
accounts, suitability assessments, securities, fund products, trades, positions, cash flows,
fund transactions, APP events, WeCom follows and chats, content, campaigns and their touches,
in the formats brokers' systems export (GBK CSV with Chinese headers, UTF-8 CSV, Parquet,
JSON Lines), plus ``sources.yaml`` mapping every file to its table.

Behaviour comes from per-customer latent traits and content/product preferences
(``preferences``); the true values, the labels of generated chat messages and the list of
deliberately bad rows go to ``_ground_truth/`` for tests and model evaluation. The product
never reads that folder.
"""

from caifu.data.demo.generator import DemoSummary, generate

__all__ = ["DemoSummary", "generate"]
