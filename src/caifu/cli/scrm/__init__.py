"""``caifu wecom``, ``caifu groups``, ``caifu campaign``: the SCRM on WeCom."""

from caifu.cli.scrm import campaigns as campaigns  # noqa: F401  (each registers its commands)
from caifu.cli.scrm import groups as groups  # noqa: F401
from caifu.cli.scrm import wecom as wecom  # noqa: F401
