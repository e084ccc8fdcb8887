"""Customer analytics: lifetime value (BG/NBD, Gamma-Gamma) and the models built on it.

A logic layer: numpy/scipy over arrays and Arrow tables handed in by a service; no
connections, no adapters. Start with :mod:`caifu.analytics.clv`.
"""
