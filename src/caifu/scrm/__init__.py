"""SCRM on WeCom: callback crypto and events, identity linking, groups, campaigns, funnels.

Logic only: no connections. The HTTP client and the fake WeCom live in ``adapters/wecom``;
storage and orchestration in ``services``.
"""
