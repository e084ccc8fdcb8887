"""``caifu value``, ``caifu score``, ``caifu report value``, ``caifu redemption``."""

from caifu.cli.value import customer_value as customer_value  # noqa: F401  (each registers)
from caifu.cli.value import redemption as redemption  # noqa: F401
from caifu.cli.value import scores as scores  # noqa: F401
