"""The ``caifu`` command: thin commands that parse input, call one service, show the result.

``common`` holds the app and what commands share; each module below adds its commands.
"""

from caifu.cli import audit as audit  # noqa: F401  (each registers its commands)
from caifu.cli import campaigns as campaigns  # noqa: F401
from caifu.cli import cards as cards  # noqa: F401
from caifu.cli import commands as commands  # noqa: F401
from caifu.cli import identity as identity  # noqa: F401
from caifu.cli import lifecycle as lifecycle  # noqa: F401
from caifu.cli import privacy as privacy  # noqa: F401
from caifu.cli import redemption as redemption  # noqa: F401
from caifu.cli import scrm as scrm  # noqa: F401
from caifu.cli import serve as serve  # noqa: F401
from caifu.cli import value as value  # noqa: F401
from caifu.cli import value_cmds as value_cmds  # noqa: F401
from caifu.cli import wecom as wecom  # noqa: F401
from caifu.cli.common import app as app

__all__ = ["app"]
